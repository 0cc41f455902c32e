"""Validation splits stratified over sources and scene types (deterministic, by image id).

Every tuned choice (early stopping, refinement, selection k and layers, learning rates) is made on the
validation images this module picks; test sets only report. Image ids carry their stratum: the top folder
(the source, e.g. ``people/`` vs ``interiors/``) and the file name's leading word (SIFT Flow's
``coast_arnat59``, interiors' ``bedroom_0012``). Within each stratum images are ordered by a seeded hash
of their id, so a split never depends on listing order (SIFT Flow's sorted ids start with 300 coast images).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Dict, Iterable, List, Sequence, Set

_WORD = re.compile(r"[A-Za-z]+")


def stratum(image_id: str) -> str:
    """Source and scene type of an image id.

    ``"coast_arnat59"`` -> ``"coast"``; ``"interiors/bedroom_0012.jpg"`` -> ``"interiors/bedroom"``;
    ``"people/0001.jpg"`` -> ``"people/"`` (no leading word: the whole source is one stratum).
    """
    folder, _, name = str(image_id).replace("\\", "/").rpartition("/")
    top = folder.split("/", 1)[0] if folder else ""
    match = _WORD.match(name)
    word = match.group(0).lower() if match and match.end() < len(name) and not name[match.end()].isalpha() else ""
    return f"{top}/{word}" if top else word


def _rank(image_id: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"val:{seed}:{image_id}".encode()).digest()[:8], "little")


def by_stratum(ids: Iterable[str], seed: int = 0) -> Dict[str, List[str]]:
    """Ids grouped by `stratum`, each group in seeded-hash order."""
    groups: Dict[str, List[str]] = defaultdict(list)
    for i in ids:
        groups[stratum(i)].append(i)
    return {s: sorted(g, key=lambda i: (_rank(i, seed), i)) for s, g in sorted(groups.items())}


def validation_ids(ids: Sequence[str], fraction: float, seed: int = 0) -> Set[str]:
    """Held-out ids: `fraction` of the images, allotted to strata in proportion to their size.

    Stratum quotas use the largest-remainder rule, so the total is ``round(fraction * len(ids))`` and
    every stratum of at least ``1 / fraction`` images contributes.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction {fraction}: expected 0 <= fraction < 1")
    groups = by_stratum(ids, seed)
    total = int(round(fraction * len(ids)))
    exact = {s: fraction * len(g) for s, g in groups.items()}
    quota = {s: int(v) for s, v in exact.items()}
    rest = sorted(groups, key=lambda s: (-(exact[s] - quota[s]), _rank(s, seed)))
    for s in rest[: max(0, total - sum(quota.values()))]:
        quota[s] += 1
    return {i for s, g in groups.items() for i in g[: quota[s]]}


def stratified_sample(ids: Sequence[str], n: int, seed: int = 0) -> List[str]:
    """At most `n` ids taken round-robin over strata (each in hash order): a balanced subset."""
    groups = list(by_stratum(ids, seed).values())
    out: List[str] = []
    depth = 0
    while len(out) < n and any(depth < len(g) for g in groups):
        out.extend(g[depth] for g in groups if depth < len(g))
        depth += 1
    return out[:n] if n >= 0 else out


def source(image_id: str) -> str:
    """The source of an image id: its top folder (``"people/0001.jpg"`` -> ``"people"``; ``""`` for a bare
    name such as SIFT Flow's ``"coast_arnat59"``)."""
    folder, _, _ = str(image_id).replace("\\", "/").rpartition("/")
    return folder.split("/", 1)[0] if folder else ""


def source_repeats(ids: Sequence[str], power: float, seed: int = 0) -> Dict[str, int]:
    """How often each image appears per training epoch so that source ``s`` (`source`, ``n_s`` images) takes
    a share of the epoch proportional to ``n_s ** power``: 1 keeps the listing's proportions, 0 gives every
    source the same share, 0.5 is in between. The largest source is seen once per epoch; a smaller one
    ``r_s = (n_max / n_s) ** (1 - power)`` times on average, as ``floor(r_s)`` or ``floor(r_s) + 1`` per image
    (by a seeded hash of the id, so the mean is exact to within one image and the choice reproducible).

    Returns
    -------
    dict
        Image id -> repetitions (>= 1).
    """
    if not 0 <= power <= 1:
        raise ValueError(f"source balance power {power}: expected 0 <= power <= 1")
    groups: Dict[str, List[str]] = defaultdict(list)
    for i in ids:
        groups[source(i)].append(i)
    if not groups:
        return {}
    largest = max(len(g) for g in groups.values())
    out: Dict[str, int] = {}
    for g in groups.values():
        rate = (largest / len(g)) ** (1.0 - power)
        whole, extra = int(rate), rate - int(rate)
        ranked = sorted(g, key=lambda i: (_rank(i, seed), i))
        n_extra = int(round(extra * len(g)))
        for k, i in enumerate(ranked):
            out[i] = whole + (k < n_extra)
    return out


def strata_counts(ids: Iterable[str]) -> Dict[str, int]:
    """Images per stratum (recorded with a split so readers can see its balance)."""
    counts: Dict[str, int] = defaultdict(int)
    for i in ids:
        counts[stratum(i)] += 1
    return dict(sorted(counts.items()))
