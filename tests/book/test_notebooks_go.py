"""The kernel-optimization and ablation notebooks under the smoke profile: they ran and glued what the chapters paste."""

import pytest
from notebook_outputs import glued, pasted

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter,stem", [("kernel_optimization.md", "04_kernel_optimization"),
                                          ("ablation.md", "05_ablation")])
def test_every_pasted_key_is_glued(smoke_book, chapter, stem):
    keys = set(glued(smoke_book / "book" / "generated" / f"{stem}.ipynb"))
    wanted = pasted(chapter, stem)
    assert wanted, "the chapter pastes nothing"
    assert wanted <= keys, f"missing: {sorted(wanted - keys)}"
