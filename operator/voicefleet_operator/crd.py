"""Compile the VoiceAgent models into a CustomResourceDefinition.

Pydantic emits JSON Schema; the API server wants a structural OpenAPI v3 schema: no $ref, no
nullable unions, `exclusiveMinimum` as a flag, no `additionalProperties` beside `properties`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from voicefleet_models.voice_agent import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    VoiceAgentSpec,
    VoiceAgentStatus,
)

Schema = dict[str, Any]
_DROPPED = {"title", "additionalProperties", "$defs"}


def openapi_schema(model: type[BaseModel]) -> Schema:
    """The structural schema of a model, descriptions and validations included."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(schema, schema.get("$defs", {}))


def _convert(node: Schema, defs: dict[str, Schema]) -> Schema:
    if "$ref" in node:
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **siblings}
    if "anyOf" in node:
        return _convert(_without_null(node), defs)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _defaulted(_convert(sub, defs)) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "default" and isinstance(value, dict | list):
            continue  # object defaults come from the models, not the API server
        elif key == "description":
            out[key] = " ".join(value.split())
        else:
            out[key] = value
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" not in node:
        out["additionalProperties"] = _convert(extra, defs)
    return out


def _defaulted(field: Schema) -> Schema:
    """An object whose fields are all optional defaults to {}, so the API server fills in its
    fields' defaults even when the user leaves the whole object out."""
    if "properties" in field and not field.get("required"):
        return {**field, "default": {}}
    return field


def _without_null(node: Schema) -> Schema:
    """`X | None` becomes X: an absent field means None."""
    options = [o for o in node["anyOf"] if o.get("type") != "null"]
    if len(options) != 1:
        raise ValueError(f"unsupported union in schema: {node}")
    rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
    return {**options[0], **rest}


PRINTER_COLUMNS = [
    {"name": "Agent", "type": "string", "jsonPath": ".status.agentName"},
    {"name": "Regions", "type": "integer", "jsonPath": ".status.regionCount"},
    {"name": "Sessions", "type": "integer", "jsonPath": ".status.activeSessions"},
    {"name": "Ready/Desired", "type": "string", "jsonPath": ".status.workers"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def custom_resource_definition() -> Schema:
    """The VoiceAgent CRD as a plain manifest."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["va"],
                "categories": ["voicefleet"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": VoiceAgentSpec.__doc__,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(VoiceAgentSpec),
                                "status": openapi_schema(VoiceAgentStatus),
                            },
                        }
                    },
                }
            ],
        },
    }
