"""The report only reads run files: importing and running it loads no data, engine or model-building code."""

import subprocess
import sys

from tests.report.test_cli import _env_with_ablate

FORBIDDEN = ("ablate.data", "ablate.engine", "ablate.models.builder", "torch")


def test_report_imports_no_engine_data_or_model_builder(sweep, tmp_path):
    code = (
        "import sys\n"
        "import ablate.report.__main__ as m\n"
        "from ablate.report import build, job_figures, baseline, per_class, settle\n"
        f"assert m.main([{str(sweep)!r}, '--out', {str(tmp_path / 'rep')!r}, '--no-wandb']) == 0\n"
        "print(sorted(k for k in sys.modules if k.startswith(('ablate', 'torch'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env_with_ablate(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = eval(proc.stdout.strip().splitlines()[-1])
    assert "ablate.report.build" in loaded
    for name in FORBIDDEN:
        assert not [m for m in loaded if m == name or m.startswith(name + ".")], name
