"""Where kopf keeps its bookkeeping: in memory, and in annotations only while retrying."""

from __future__ import annotations

import copy
from typing import Any, cast

import kopf


class RememberedSpecs(kopf.DiffBaseStorage):
    """The last handled spec of each VoiceAgent, kept in memory rather than written back to
    the object: one API write less per change, which a fleet of thousands notices. Nothing
    is lost on restart: every VoiceAgent is then reconciled once, as a new one."""

    def __init__(self) -> None:
        super().__init__()
        self._essences: dict[str, kopf.BodyEssence] = {}

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        if any(path[0] != "spec" for path in extra_fields or ()):
            return super().build(body=body, extra_fields=extra_fields)
        # The spec alone is what the handlers act on. kopf's default copies the whole object,
        # status and managed fields included, on every watch event, then drops most of it.
        return cast(kopf.BodyEssence, {"spec": copy.deepcopy(dict(body.spec))})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self._essences.get(body.metadata.uid or "")

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        self._essences[body.metadata.uid or ""] = essence

    def forget(self, uid: str) -> None:
        self._essences.pop(uid, None)


class UnmarkedProgress(kopf.AnnotationsProgressStorage):
    """kopf's retry bookkeeping in annotations, written only while a handler retries. kopf
    would also brand every handled object with a marker annotation, once: a write per
    VoiceAgent that only matters to other kopf operators handling the same objects."""

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: kopf.Body) -> None:
        pass

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        # An essence without metadata has no bookkeeping annotations to strip: spare the copy
        # kopf makes of it on every watch event.
        return essence if "metadata" not in essence else super().clear(essence=essence)
