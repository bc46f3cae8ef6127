#!/bin/bash
# Prepare, on the CPU machine, what benchmarks/gpu_session.sh needs on a lent GPU machine (which reaches no
# network and has PyTorch but not Hydra or pycocotools): the missing wheels in .whl/ and the authors' code in
# .ref/, both git-ignored (.git/info/exclude) and named in the device call's `carry`:
#   bash benchmarks/gpu_prepare.sh
#   device run: command "bash benchmarks/gpu_session.sh", carry [".whl", ".ref"], timeout_s 540
set -euo pipefail
cd "$(dirname "$0")/.."
for d in /.whl/ /.ref/; do grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude; done
rm -rf .whl .ref && mkdir -p .whl .ref
# the GPU image's python is 3.12 (x86-64); pure-python wheels need no platform
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl hydra-core==1.3.2 omegaconf==2.3.0 pycocotools==2.0.10
python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3  # published as a source archive only
cp -r ../shared/reference/ConditionalDETR .ref/
du -sh .whl .ref
