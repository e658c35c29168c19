"""Package discovery that pyproject.toml alone cannot express: every ``bridge.*`` package is
found automatically, and ``codecs/`` is installed as ``bridge_codecs`` (under its folder name it
would shadow the standard library's ``codecs``). All other metadata is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

# Namespace discovery also finds data-only folders such as bridge/prompts (no __init__.py).
setup(packages=[*find_namespace_packages(include=["bridge", "bridge.*"], exclude=["*.__pycache__"]), "bridge_codecs"])
