"""The model catalogue: which GGUF file `-m` names (a path, an alias, or another tool's store: `stores.py`,
`files.py`) and what a file holds (`gguf_info.py`). Nothing here decodes; that is `engine/`."""
