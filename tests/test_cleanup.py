from pipeline.artifacts import ModelsFolder
from tasks.cleanup import prune_version_dirs


def make(models, *names):
    for name in names:
        (models / name).mkdir(parents=True)
        (models / name / "metadata.json").write_text("{}")


def test_keeps_the_newest_and_the_protected(tmp_path):
    make(
        tmp_path,
        "20260101T000000Z-a",
        "20260201T000000Z-b",
        "20260301T000000Z-c",
        "20260401T000000Z-d",
        ".20260501T000000Z-e.tmp",
    )
    removed = prune_version_dirs(ModelsFolder(tmp_path), protected={"20260101T000000Z-a"}, keep=2)
    assert removed == ["20260201T000000Z-b"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        ".20260501T000000Z-e.tmp",
        "20260101T000000Z-a",
        "20260301T000000Z-c",
        "20260401T000000Z-d",
    ]


def test_nothing_to_prune(tmp_path):
    make(tmp_path, "20260101T000000Z-a")
    assert prune_version_dirs(ModelsFolder(tmp_path), set(), keep=3) == []
    assert prune_version_dirs(ModelsFolder(tmp_path / "missing"), set(), keep=1) == []
