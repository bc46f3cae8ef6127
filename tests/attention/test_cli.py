import json

from ablate.attention import files
from ablate.attention.__main__ import main


def test_folder_without_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "job" / ".hydra").mkdir(parents=True)
    (tmp_path / "job" / ".hydra" / "config.yaml").write_text("seed: 0\n")
    assert main([str(tmp_path / "job")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ablate: ") and "checkpoint" in err[0]
    assert not (tmp_path / "job" / "attention").exists()


def test_index_add_replace_and_read(tmp_path):
    job = tmp_path / "job"
    files.add_image(job, {"label": "CSQ-C", "step": 10}, {"image": 2, "png": "image2.png", "maps": "image2.npz"})
    files.add_image(job, {"label": "CSQ-C", "step": 20}, {"image": 0, "png": "image0.png", "maps": "image0.npz"})
    files.add_image(job, {"label": "CSQ-C", "step": 20}, {"image": 2, "png": "image2.png", "maps": "image2.npz"})
    index = files.read_index(job)
    assert [e["image"] for e in index["images"]] == [0, 2] and index["step"] == 20
    assert files.find_image(job, 2)["png"] == job / "attention" / "image2.png"
    assert files.find_image(job, 5) is None
    (job / "attention" / "index.json").write_text(json.dumps([1, 2]))
    assert files.read_index(job) is None
