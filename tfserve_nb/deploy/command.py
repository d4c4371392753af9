"""``tfserve-nb manifests``: :func:`~tfserve_nb.deploy.deployment` from the command line.

Each option is one of the function's keywords, spelled as a flag::

    tfserve-nb manifests models/digits --out deploy/ --model-uri s3://bucket/digits \\
        --split stable=90,canary=10 --hpa 2,5,70

``BASE_PATH_OR_CONFIG_FILE`` is a model folder, a ``models.config`` file (policy and labels as
written there) or a storage URI. Exits 0 having written the files (and listed them), 2 on a usage
error or a refused setting (with the reason on standard error).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from ..errors import ConfigError, InvalidArgumentError
from .manifests import deployment

__all__ = ["build_parser", "run"]

_NAMED_URI = re.compile(r"(?P<name>[^=:/]+)=(?P<uri>.+)")


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise argparse.ArgumentTypeError(f"{what} {text!r}: expected KEY=VALUE[,KEY=VALUE]")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _resources(text: str) -> dict[str, str]:
    return dict(_pairs(text, "resources"))


def _split(text: str) -> dict[int | str, float]:
    weights: dict[int | str, float] = {}
    for target, weight in _pairs(text, "split"):
        try:
            weights[int(target) if target.isdigit() else target] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"split weight {weight!r} is not a number") from None
    return weights


def _hpa(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"hpa {text!r}: expected MIN,MAX,CPU_PERCENT")
    low, high, cpu = (int(p) for p in parts)
    return low, high, cpu


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfserve-nb manifests",
        description="Write Kubernetes (tensorflow/serving) and KServe manifests for a model "
        "repository, with a README on applying, checking, promoting and rolling back.",
    )
    add = parser.add_argument
    add("source", metavar="BASE_PATH_OR_CONFIG_FILE")
    add("--out", required=True, metavar="DIR", help="folder to write the files into")
    add(
        "--model-uri",
        action="append",
        metavar="[NAME=]URI",
        help="storage URI of the model's repository (s3://bucket/digits); NAME=URI per model, "
        "repeated, for several",
    )
    add("--volume-claim", metavar="PVC", help="PersistentVolumeClaim holding the models")
    add("--name", help="name of the objects (default: the first model's)")
    add("--namespace")
    add("--replicas", type=int, default=2)
    add("--image", help="TF Serving image (default: tensorflow/serving at TensorFlow's version)")
    add("--image-digest", metavar="sha256:...")
    add("--requests", type=_resources, metavar="cpu=500m,memory=512Mi")
    add("--limits", type=_resources, metavar="cpu=1,memory=1Gi")
    add("--hpa", type=_hpa, metavar="MIN,MAX,CPU_PERCENT")
    add("--split", type=_split, metavar="stable=90,canary=10", help="KServe's canary share")
    add("--s3-endpoint", metavar="URL", help="an S3-compatible server (AWS_ENDPOINT_URL)")
    add("--s3-region")
    add("--storage-secret", metavar="SECRET", help="Secret with the storage credentials")
    add("--poll-seconds", type=int, help="--model_config_file_poll_wait_seconds")
    return parser


def _model_uri(values: Sequence[str] | None) -> str | dict[str, str] | None:
    if not values:
        return None
    named = [_NAMED_URI.fullmatch(value) for value in values]
    if len(values) == 1 and named[0] is None:
        return values[0]
    if not all(named):
        raise ConfigError(f"--model-uri {list(values)}: with several, give each as NAME=URI")
    return {match.group("name"): match.group("uri") for match in named if match}


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, write the manifests, list them; the exit status."""
    parser = build_parser()
    flags = parser.parse_args(argv)
    resources = {
        part: values
        for part, values in (("requests", flags.requests), ("limits", flags.limits))
        if values
    }
    try:
        written = deployment(
            flags.source,
            out_dir=flags.out,
            model_uri=_model_uri(flags.model_uri),
            volume_claim=flags.volume_claim,
            name=flags.name,
            namespace=flags.namespace,
            replicas=flags.replicas,
            image=flags.image,
            image_digest=flags.image_digest,
            resources=resources or None,
            hpa=flags.hpa,
            split=flags.split,
            s3_endpoint=flags.s3_endpoint,
            s3_region=flags.s3_region,
            storage_secret=flags.storage_secret,
            poll_seconds=flags.poll_seconds,
        )
    except (ConfigError, InvalidArgumentError) as exc:
        print(f"tfserve-nb manifests: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written.files)} files into {written.out_dir}:")
    for name in written.files:
        print(f"  {name}")
    return 0
