"""The cluster's prices as a worker reads them: the file the operator mounts (see
voicefleet_models.pricing), read afresh as each call ends."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from voicefleet_models.pricing import PRICING_FILE_VARIABLE, Pricing

logger = logging.getLogger("voicefleet.agent")


def cluster_pricing(env: Mapping[str, str] = os.environ) -> Pricing | None:
    """The prices the operator mounted, read afresh; None where none are given (a worker
    outside Kubernetes) or they cannot be read (a warning in the log; the call is unaffected)."""
    path = env.get(PRICING_FILE_VARIABLE)
    if not path:
        return None
    try:
        return Pricing.model_validate(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ValidationError) as error:
        logger.warning("prices not readable", extra={"path": path, "error": str(error)})
        return None
