"""The README's result tables are exactly what the result files in results/ render."""

import os
import re

import pytest

from gpj.report import readme


def test_readme_tables_are_rendered_from_the_result_files():
    with open(os.path.join(readme.ROOT, "README.md")) as f:
        text = f.read()
    names = re.findall(r"<!-- results: (\w+) -->", text)
    assert {"paper", "probe", "paper_attack"} <= set(names)
    assert readme.render(text) == text, "run python -m gpj.report.readme"


def test_a_block_without_its_result_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"README block 'probe' needs .*probe\.json"):
        readme.render("<!-- results: probe -->\n<!-- /results -->\n", str(tmp_path))
