"""The page's JavaScript against Python: the tokenizer (node, fast) and the served bundle (no browser)."""

import json
import shutil
import subprocess
import urllib.request

import pytest

from lnn.export.bundle import WEB_SOURCES
from lnn.export.serve import serve_in_thread
from lnn.models.glyphs import named_text
from lnn.models.text import tokenize

TEXTS = [
    "click-color Click the red square",
    "enter-text Type \"hello\" into the box and press Enter",
    "ÉCOLE naïve café — Straße 42! ünïcödé",
    "MiXeD-CaSe_words,with;punctuation... 123abc ABC123",
    "",
    "   ",
    "K İstanbul ǅ ﬁ",  # Kelvin sign, dotted I, titlecase digraph, ligature: no case folding on either side
    ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
     "seventeen eighteen nineteen twenty twentyone twentytwo twentythree twentyfour twentyfive twentysix"),
    "emoji 😀 tokens 🚀 ok",
    "grid-coordinate Click on the grid coordinate (2,-1). -3 4-5 x-7",  # signed numbers, pairs keep order
    "unicode-test Click on the \"♥♥\" button 确定 ΟΚ ①½ ٣",  # symbols, CJK, Greek, other numerals
    "cafe\u0301 e\u0301",  # a combining accent is a symbol of its own in both
    "Click Q q Ann-Marie Zsa Zsa O'Neil",  # case kept; names with a hyphen, a space, an apostrophe
    "Supercalifragilisticexpialidocious 确定确定确定确定确定 😀😀😀😀",  # words that go on in further slots
]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (the page's tokenizer is JavaScript)")
@pytest.mark.parametrize(("max_words", "word_bytes"), [(32, 12), (6, 3)])
def test_javascript_tokenizer_equals_python(max_words, word_bytes):
    script = (
        f"import {{ tokenize }} from '{(WEB_SOURCES / 'lnn.js').as_uri()}';"
        f"const texts = {json.dumps(TEXTS)};"
        f"console.log(JSON.stringify(texts.map((t) => tokenize(t, {max_words}, {word_bytes}))));"
    )
    result = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [tokenize(t, max_words, word_bytes) for t in TEXTS]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (the page's named-text rule is JavaScript)")
def test_javascript_named_text_equals_python():
    texts = TEXTS + ['Click on the link "ipsum".', "Find the email by Zoë and reply", "Click 'Q' now", 'Say "it\'s"',
                     "Find the email by Ann-Marie", "click Élodie Zeta", "Click the button.", "Select O'Neil"]  # fmt: skip
    script = (f"import {{ namedText }} from '{(WEB_SOURCES / 'lnn.js').as_uri()}';"
              f"console.log(JSON.stringify({json.dumps(texts)}.map(namedText)));")  # fmt: skip
    result = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [named_text(t) for t in texts]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (the page's text decoding is JavaScript)")
def test_javascript_typed_text_equals_the_agents():
    """The text head's bytes (int64: BigInt in onnxruntime-web) up to the first -1, as UTF-8 (lnn.rollout)."""
    from lnn.envs import ACTIONS
    from lnn.rollout import decode_action

    rows = [list("café".encode()) + [-1, 65], list(b"hello"), [-1, 66], list("确定".encode())[:4] + [-1]]
    script = (f"import {{ typedText }} from '{(WEB_SOURCES / 'lnn.js').as_uri()}';"
              f"console.log(JSON.stringify({json.dumps(rows)}.map((r) => typedText(BigInt64Array.from(r, BigInt)))));")
    result = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    typed = [decode_action(ACTIONS.index("type"), (0.5, 0.5), "", typed=r).text for r in rows]
    assert json.loads(result.stdout) == typed and typed[:3] == ["café", "hello", ""]


def test_server_serves_the_bundle_with_the_right_types(tiny_export):
    if not (tiny_export / "web").exists():
        pytest.skip("onnxruntime-web not installed (run `npm ci`): the export has no web page")
    server, url = serve_in_thread(tiny_export)
    try:
        with urllib.request.urlopen(url) as page:
            assert b"app.js" in page.read()
        with urllib.request.urlopen(url + "ort/ort-wasm-simd-threaded.wasm") as wasm:
            assert wasm.headers["Content-Type"] == "application/wasm"
        with urllib.request.urlopen(url + "app.js") as js:
            assert js.headers["Content-Type"].startswith("text/javascript")
        with urllib.request.urlopen(url.replace("/web/", "/manifest.json")) as manifest:
            assert json.loads(manifest.read())["format"] == "lnn-export/3"
        index = json.loads((tiny_export / "episodes" / "index.json").read_text())
        assert len(index["episodes"]) == 3 and len(index["episodes"][0]["steps"]) == 16
        timing = index["episodes"][2]["steps"]  # wait-green: each step carries the dt the page feeds
        assert index["episodes"][2]["task"] == "wait-green" and len({s["dt"] for s in timing}) > 2
        with urllib.request.urlopen(url.replace("/web/", "/") + index["episodes"][0]["steps"][0]["frame"]) as frame:
            assert frame.read(8) == b"\x89PNG\r\n\x1a\n"
    finally:
        server.shutdown()
        server.server_close()
