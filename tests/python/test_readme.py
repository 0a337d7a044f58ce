"""The README's Python quickstart runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_python_quickstart_runs():
    text = README.read_text()
    section = text.split("## Python quickstart", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    w, y = namespace["w"], namespace["y"]
    assert tuple(y.shape) == (1, 1, 1024, 64)
    assert w.grad is not None and tuple(w.grad.shape) == (8,)
    assert list(namespace["weights"]) == ["x", "w"]  # file order: float64 before float32
