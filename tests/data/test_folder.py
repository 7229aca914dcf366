"""A user's folder of screenshots (episodes.jsonl + images) imported into the recorders' dataset format."""

import json
from pathlib import Path

import datasets as hf
import numpy as np
import pytest
import torch
from PIL import Image

import lnn.data.folder as folder_mod
from lnn.data import FolderDataModule, import_folder, load_episodes
from lnn.data.rollouts import features
from lnn.envs import ACTIONS
from lnn.errors import ConfigError, DataError

SIZE = 32


def step_line(episode: str, step: int, last: bool) -> dict:
    """A step: clicks (with a box on even episodes), a typed word, then done."""
    if last:
        return {"episode": episode, "step": step, "image": f"{episode}/{step}.png", "instruction": f"finish {episode}",
                "action": "done", "dt": 0.5}  # fmt: skip
    if step == 1:
        return {"episode": episode, "step": step, "image": f"{episode}/{step}.png", "instruction": "type hi",
                "action": "type", "text": "hi", "task": "form"}  # fmt: skip
    line = {"episode": episode, "step": step, "image": f"{episode}/{step}.png", "instruction": f"click {episode}",
            "action": "click", "x": 0.25, "y": 0.75, "task": "form", "dt": 2.0}  # fmt: skip
    if int(episode[1:]) % 2 == 0:
        line["box"] = [0.2, 0.7, 0.3, 0.8]
    return line


def write_image(path: Path, seed: int, size=(160, 210)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_folder(root: Path, episodes: int = 6, steps: int = 3) -> Path:
    folder = root / "shots"
    lines = [step_line(f"e{e}", s, s == steps - 1) for e in range(episodes) for s in range(steps)]
    for i, line in enumerate(lines):
        write_image(folder / line["image"], i, size=(160 + i % 3, 210))  # sizes differ: all are stretched
    write_lines(folder, lines)
    return folder


def write_lines(folder: Path, lines: list) -> None:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    (folder / "episodes.jsonl").write_text(text + "\n")


def read_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "episodes.jsonl").read_text().splitlines()]


def test_import_round_trips_the_lines(tmp_path):
    folder = make_folder(tmp_path)
    out = import_folder(folder, tmp_path / "cache", SIZE, val_fraction=0.3, workers=1)
    lines = {(line["episode"], line["step"]): line for line in read_lines(folder)}
    seen = []
    for split in ("train", "val"):
        ds = hf.load_from_disk(str(out / split))
        assert set(ds.column_names) == set(features())
        for row in ds:
            ids = sorted({line["episode"] for line in lines.values()}, key=lambda e: int(e[1:]))
            line = lines[(ids[row["episode"]], row["step"])]  # episode ids number the episodes in file order
            seen.append((line["episode"], row["step"]))
            assert ACTIONS[row["action"]] == line["action"] and row["instruction"] == line["instruction"]
            assert row["task"] == line.get("task", "") and row["text"] == line.get("text", "")
            assert row["dt"] == pytest.approx(line.get("dt", 1.0))
            assert row["click"] == pytest.approx([line["x"], line["y"]] if "x" in line else [-1, -1])
            assert row["target_box"] == pytest.approx(line.get("box", [-1] * 4)) and row["focus_box"] == row["target_box"]
            source = Image.open(folder / line["image"]).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
            assert np.array_equal(np.array(row["screenshot"]), np.array(source))  # stretched, lossless
    assert sorted(seen) == sorted(lines)  # every step once, in one split
    episodes = load_episodes(out / "train", SIZE)  # the DataModule reads it as it reads recordings
    assert episodes.images.shape[1:] == (SIZE, SIZE, 3) and set(episodes.dt.tolist()) == {0.5, 1.0, 2.0}


def test_split_by_episode_is_deterministic_and_never_empty(tmp_path):
    folder = make_folder(tmp_path, episodes=20)
    steps = folder_mod.read_steps(folder)
    splits = folder_mod.split_episodes(steps, 0.25, folder)
    assert splits == folder_mod.split_episodes(steps, 0.25, folder)
    assert 1 <= len(splits["val"]) < 20 and not set(splits["val"]) & set(splits["train"])
    tiny = folder_mod.split_episodes(folder_mod.read_steps(make_folder(tmp_path / "two", episodes=2)), 0.01, folder)
    assert len(tiny["train"]) == len(tiny["val"]) == 1


def test_a_rerun_uses_the_cache_and_a_changed_file_imports_again(tmp_path, monkeypatch):
    folder = make_folder(tmp_path)
    cache = tmp_path / "cache"
    first = import_folder(folder, cache, SIZE, workers=1)
    real_write = folder_mod._write_import
    monkeypatch.setattr(folder_mod, "_write_import", lambda *a: pytest.fail("imported a cached folder again"))
    assert import_folder(folder, cache, SIZE, workers=1) == first
    monkeypatch.setattr(folder_mod, "_write_import", real_write)
    write_image(folder / "e0" / "0.png", seed=99)  # an image changed
    second = import_folder(folder, cache, SIZE, workers=1)
    lines = read_lines(folder)
    lines[0]["instruction"] = "click the other one"  # a line changed
    write_lines(folder, lines)
    third = import_folder(folder, cache, SIZE, workers=1)
    assert len({first, second, third}) == 3 and all(p.exists() for p in (first, second, third))
    assert import_folder(folder, cache, SIZE * 2, workers=1) != third  # another image size


def test_parallel_decoding_gives_the_same_rows(tmp_path):
    folder = make_folder(tmp_path, episodes=30)  # 90 images: enough for the worker pool
    one = hf.load_from_disk(str(import_folder(folder, tmp_path / "a", SIZE, workers=1) / "train"))
    two = hf.load_from_disk(str(import_folder(folder, tmp_path / "b", SIZE, workers=2) / "train"))
    assert one.cast_column("screenshot", hf.Image(decode=False))[:] == two.cast_column("screenshot", hf.Image(decode=False))[:]


def corrupt_image(folder, lines):
    (folder / lines[4]["image"]).write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return 5


def missing_image(folder, lines):
    (folder / lines[2]["image"]).unlink()
    return 3


def replace(index: int, **changes):
    def edit(folder, lines):
        lines[index] = {k: v for k, v in {**lines[index], **changes}.items() if v is not None}
        return index + 1

    return edit


def not_json(folder, lines):
    lines[1] = "{not json"
    return 2


BAD_LINES = {
    "missing image": (missing_image, "does not exist"),
    "unreadable image": (corrupt_image, "cannot be read"),
    "unknown action": (replace(3, action="hover"), "unknown action 'hover'"),
    "click outside [0, 1]": (replace(3, x=1.5), "x is 1.5, outside [0.0, 1.0]"),
    "click not a number": (replace(3, y=float("nan")), "y is nan"),
    "box outside [0, 1]": (replace(6, box=[0.1, 0.1, 1.2, 0.3]), "box[2] is 1.2"),
    "steps out of order": (replace(4, step=2), "step 2 is out of order"),
    "episode split up": (replace(7, episode="e0", step=3), "continues after other episodes"),
    "missing key": (replace(3, instruction=None), "missing key 'instruction'"),
    "click without y": (replace(0, y=None), "missing key 'y'"),
    "bad dt": (replace(2, dt=0), "dt is 0"),
    "image outside the folder": (replace(5, image="../elsewhere.png"), "must be a path inside the folder"),
    "not JSON": (not_json, "not valid JSON"),
    "drag without its release point": (replace(0, action="drag"), "missing key 'x2', 'y2'"),
    "release outside [0, 1]": (replace(0, action="drag", x2=0.5, y2=-0.1), "y2 is -0.1"),
    "key without its name": (replace(1, action="key", text=None), "missing key 'text'"),
    "unknown key": (replace(1, action="key", text="F13"), "key 'F13' is not one of lnn.envs.KEYS"),
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_a_bad_line_stops_the_import_naming_file_and_line(tmp_path, kind):
    folder = make_folder(tmp_path)
    lines = read_lines(folder)
    edit, what = BAD_LINES[kind]
    line = edit(folder, lines)
    write_lines(folder, lines)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as error:
        import_folder(folder, cache, SIZE, workers=1)
    message = str(error.value)
    assert message.startswith(f"{folder / 'episodes.jsonl'}:{line}: ") and what in message, message
    assert "\n" not in message
    assert not [p for p in cache.glob("*") if not p.name.startswith(".")]  # nothing half-written (a lock file at most)


def test_the_datamodule_checks_its_settings_and_batches_dt(tmp_path):
    with pytest.raises(ConfigError, match="path"):
        FolderDataModule(path=None)
    with pytest.raises(ConfigError, match="val_fraction"):
        FolderDataModule(path=str(tmp_path), val_fraction=1.0)
    dm = FolderDataModule(path=str(make_folder(tmp_path)), image_size=SIZE, batch_size=8, data_dir=str(tmp_path / "c"))
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["images"].shape[-3:] == (SIZE, SIZE, 3)
    assert torch.equal(batch["dt"] > 0, batch["mask"]) and set(batch["dt"][batch["mask"]].tolist()) == {0.5, 1.0, 2.0}


def test_drags_and_keys_round_trip_into_their_columns_and_batches(tmp_path):
    """Format 5: a drag keeps its press point in `click` and its release point in `release`; a key step its
    KEYS index in `key` (and its name in `text`); the batches carry them, -1 / IGNORE elsewhere."""
    from lnn.data import IGNORE, collate_episodes
    from lnn.data.datamodule import EpisodeDataset
    from lnn.envs import KEYS

    folder = make_folder(tmp_path, episodes=2)
    lines = read_lines(folder)
    lines[0] |= {"action": "drag", "x": 0.1, "y": 0.2, "x2": 0.7, "y2": 0.9}
    lines[1] |= {"action": "key", "text": "Tab"}
    lines[4] |= {"action": "type", "text": "héllo"}
    write_lines(folder, lines)
    out = import_folder(folder, tmp_path / "cache", SIZE, val_fraction=0.5, workers=1)
    episodes = load_episodes(out / "train", SIZE) + load_episodes(out / "val", SIZE)
    batch = collate_episodes([EpisodeDataset(episodes)[i] for i in range(len(episodes))])
    b = next(i for i in range(2) if batch["action"][i, 0] == ACTIONS.index("drag"))
    assert batch["click"][b, 0].tolist() == pytest.approx([0.1, 0.2]) and batch["release"][b, 0].tolist() == pytest.approx([0.7, 0.9])
    assert batch["key"][b].tolist() == [IGNORE, KEYS.index("Tab"), IGNORE] and batch["text"][b][1] == "Tab"
    assert batch["release"][1 - b].eq(-1).all() and batch["key"][1 - b].eq(IGNORE).all()
    assert batch["text"][1 - b][1] == "héllo" and batch["click"][1 - b, 0].tolist() == pytest.approx([0.25, 0.75])


def test_a_dataset_of_an_older_format_is_refused_not_misread(tmp_path):
    """Rows written before format 5 have no release / key columns: reading them stops with one line naming
    the dataset and what to do."""
    out = import_folder(make_folder(tmp_path), tmp_path / "cache", SIZE, workers=1)
    old = tmp_path / "old"
    hf.load_from_disk(str(out / "train")).remove_columns(["release", "key"]).save_to_disk(str(old))
    with pytest.raises(DataError) as error:
        load_episodes(old, SIZE)
    message = str(error.value)
    assert message.startswith(f"{old}: rows of an older dataset format (no release, key column") and "\n" not in message
    assert "record it again" in message and "import the folder again" in message
    five = tmp_path / "five"  # format 5: no other boxes (where else a click is as right)
    hf.load_from_disk(str(out / "train")).remove_columns(["other_boxes"]).save_to_disk(str(five))
    with pytest.raises(DataError, match=r"older dataset format \(no other_boxes column; this version reads format 7\)"):
        load_episodes(five, SIZE)
    six = tmp_path / "six"  # format 6: no parts (what parts of the screen are)
    hf.load_from_disk(str(out / "train")).remove_columns(["parts"]).save_to_disk(str(six))
    with pytest.raises(DataError, match=r"older dataset format \(no parts column; this version reads format 7\)"):
        load_episodes(six, SIZE)
