"""The documentation site: Sphinx, the pages in MyST markdown, the API page from the docstrings.

  pip install -e '.[docs]' && sphinx-build -W -c docs . site

`-W`: every warning is an error (a broken link, anchor or image, a page missing from the
navigation, a module the API page cannot import). The source folder is the repository and this
folder only the configuration, so that the pages in docs/ and the result files and run reports
in results/ are one tree; everything else in the repository is left out. docs/layout.md says
why Sphinx, and how a page links a result file.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the API page documents the gpj of this checkout

project = "gpj — global pooling, JAX"
html_title = project
root_doc = "docs/index"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
# The pages, and the reports of the runs kept in results/ (the results page links them).
include_patterns = ["docs/*.md", "results/**.md"]
exclude_patterns = sorted(set(os.listdir(ROOT)) - {"docs", "results"})

myst_heading_anchors = 6  # `page.md#a-heading` links, with the slugs GitHub gives headings too

# The docstrings: Google style (`Args:`, `Returns:`, `Attributes:`), `code` in single backticks,
# otherwise plain text written for `help()` that is also valid reStructuredText (autodoc reads
# them as such; `-W` fails the build on a docstring that is not).
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # a class's `Attributes:` as fields, not a second entry per attribute
default_role = "literal"
toc_object_entries_show_parents = "hide"

html_theme = "furo"
html_static_path = ["stylesheets"]
html_css_files = ["extra.css"]
html_copy_source = False
html_show_sourcelink = False

# The navigation, in order: (section title or None, [(title, page in docs/)]).
NAV = [
    (None, [("Getting started", "index"), ("Results", "results")]),
    (
        "Experiments",
        [
            ("The probe (claims 1 and 2)", "probe"),
            ("Translation invariance (claim 3)", "invariance"),
            ("Position channels and attacks (claims 4 and 5)", "attack"),
            ("The paper scorecard", "paper"),
        ],
    ),
    (
        "Reference",
        [
            ("Performance", "performance"),
            ("Configs and presets", "configs"),
            ("Data", "data"),
            ("The paper's own weights", "weights"),
            ("Devices and clusters", "devices"),
            ("Layout and extending gpj", "layout"),
            ("API", "api"),
        ],
    ),
]


def navigation() -> str:
    """NAV as the hidden toctrees Sphinx builds the navigation from, in MyST markdown."""
    trees = []
    for caption, pages in NAV:
        entries = [f"{title} <{page}>" if page != "index" else "self" for title, page in pages]
        options = [":hidden:"] + ([f":caption: {caption}"] if caption else [])
        trees.append("```{toctree}\n" + "\n".join(options + [""] + entries) + "\n```\n")
    return "\n\n" + "\n".join(trees)


def read_page(app, docname, source):
    """The first page as Sphinx reads it: its text, then the navigation."""
    del app
    if docname == root_doc:
        source[0] += navigation()


def reports_outside_the_navigation(app, doctree):
    """The run reports in results/ are reached from the results page, not the navigation."""
    del doctree
    if app.env.docname.startswith("results/"):
        app.env.metadata[app.env.docname]["orphan"] = True


def front_page(app, exception):
    """The site's index.html opens the getting-started page (docs/index.html)."""
    if exception is None and app.builder.format == "html":
        with open(os.path.join(app.outdir, "index.html"), "w") as f:
            f.write(
                '<!doctype html>\n<meta charset="utf-8">\n<title>gpj</title>\n'
                '<meta http-equiv="refresh" content="0; url=docs/index.html">\n'
                '<a href="docs/index.html">gpj: getting started</a>\n'
            )


def setup(app):
    app.connect("source-read", read_page)
    app.connect("doctree-read", reports_outside_the_navigation)
    app.connect("build-finished", front_page)
