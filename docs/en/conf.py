"""Sphinx configuration of the effvit_mm documentation (Markdown pages through MyST).

Build: ``bash tools/misc/build_docs.sh [OUT_DIR]``. Nothing is downloaded at build time: the theme is
Furo (``tools/requirements-docs.txt``; its content column is wide enough for the tables and commands,
and code blocks scroll instead of being cut), and there is no intersphinx."""
project = 'effvit_mm'
author = 'effvit_mm contributors'
copyright = '2026, effvit_mm contributors'

extensions = ['myst_parser']
source_suffix = {'.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build']

# Headings of levels 1-3 get anchors, so pages can link to `page.md#a-heading`.
myst_heading_anchors = 3
myst_enable_extensions = ['colon_fence']

html_theme = 'furo'
html_title = 'effvit_mm'
html_static_path = []
# README.md is not a page: the task pages include its model-zoo tables (`include` with start-after / end-before).
