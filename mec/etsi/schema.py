"""JSON schemas of the ETSI data types the testbed serves (``schemas/mec013.json``, ``mec021.json``).

Written from the data types of GS MEC 013 v2.2.1 (clause 6) and GS MEC 021 v2.2.1
(clause 7), checked against the OpenAPI documents (docs/etsi-mec.md says which). Every
request body is checked on the way in (a 400 names the field), every answer and every
notification on the way out (a 500 / a dropped notification names the defect).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
#: api name -> schema file
APIS = {"mec013": "mec013.json", "mec021": "mec021.json"}


@lru_cache(maxsize=None)
def _document(api: str) -> dict[str, Any]:
    if api not in APIS:
        raise KeyError(f"no schema for api {api!r} (known: {', '.join(APIS)})")
    return json.loads((SCHEMA_DIR / APIS[api]).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def validator(api: str, name: str) -> Draft202012Validator:
    """The validator of data type NAME of API (``mec013`` or ``mec021``)."""
    doc = _document(api)
    if name not in doc["$defs"]:
        raise KeyError(f"{api} has no data type {name!r}")
    registry = Registry().with_resource(doc["$id"], Resource.from_contents(doc))
    return Draft202012Validator({"$ref": f"{doc['$id']}#/$defs/{name}"}, registry=registry)


def problem(api: str, name: str, doc: Any) -> Optional[str]:
    """Why DOC is not a valid NAME of API (the first error, with its path); None if it is."""
    errors = sorted(validator(api, name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    err = errors[0]
    where = "/".join(str(p) for p in err.absolute_path) or "(body)"
    return f"{name}: {where}: {err.message}"


def names(api: str) -> list[str]:
    """Every data type of API's schema."""
    return sorted(_document(api)["$defs"])
