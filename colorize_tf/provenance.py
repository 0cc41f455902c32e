"""Provenance written into every colorized output: that the colour was made automatically, by which software
version and model, and when.

Two carriers, so that both exiftool and Pillow read it back:

EXIF
    ``Software`` (0x0131) names the software and model; ``ImageDescription`` (0x010E) says the image was
    colorized automatically, unless the source had a description, which is kept. Other EXIF tags carried
    from the source are untouched.
XMP
    ``xmp:CreatorTool``, ``xmp:MetadataDate``, the IPTC digital source type
    ``compositeWithTrainedAlgorithmicMedia`` (a photo combined with trained-model output), and this project's
    namespace ``colorize:`` with ``Colorized``, ``Software``, ``Version``, ``Model``, ``ModelSHA256`` and
    ``ColorizedAt``. JPEG (APP1), WebP (XMP chunk), PNG (iTXt ``XML:com.adobe.xmp``) and TIFF (tag 700).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from typing import Optional
from xml.sax.saxutils import escape

SOFTWARE = "colorize-tf"
NAMESPACE = "https://github.com/colorize-tf/colorize-tf/ns/provenance/1.0/"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
EXIF_SOFTWARE = 0x0131
EXIF_DESCRIPTION = 0x010E


@functools.lru_cache(maxsize=1)
def software_version():
    """The installed package's version (``0+unknown`` when run from a source tree without metadata); looked up
    once per process (every output's provenance asks)."""
    from importlib import metadata

    try:
        return metadata.version("colorize-tf")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclasses.dataclass(frozen=True)
class Provenance:
    """What made an output: software, version, model name and checksum, time (UTC, ISO 8601)."""

    model: str
    model_sha256: str
    version: str = dataclasses.field(default_factory=software_version)
    when: str = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    )
    software: str = SOFTWARE

    @property
    def model_id(self):
        """``NAME@SHA12``: the manifest's model column."""
        return f"{self.model}@{self.model_sha256[:12]}"

    def software_line(self):
        return f"{self.software} {self.version} (model {self.model_id})"

    def description(self):
        return f"Colorized automatically by {self.software_line()} on {self.when}; the colours are a model's guess."


def xmp_packet(prov: Provenance) -> bytes:
    """An XMP packet (UTF-8 bytes) holding `prov`."""
    e = {k: escape(str(v)) for k, v in dataclasses.asdict(prov).items()}
    text = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:colorize="{NAMESPACE}"
    xmp:CreatorTool="{escape(prov.software_line())}"
    xmp:MetadataDate="{e["when"]}"
    Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"
    colorize:Colorized="True"
    colorize:Software="{e["software"]}"
    colorize:Version="{e["version"]}"
    colorize:Model="{e["model"]}"
    colorize:ModelSHA256="{e["model_sha256"]}"
    colorize:ColorizedAt="{e["when"]}"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return text.encode("utf-8")


def with_exif(exif_bytes: Optional[bytes], prov: Provenance) -> bytes:
    """EXIF bytes: the carried tags of `exif_bytes` (may be None) plus ``Software`` and, where the source had
    none, an ``ImageDescription`` saying the image was colorized automatically."""
    from PIL import Image

    exif = Image.Exif()
    if exif_bytes:
        exif.load(exif_bytes)
    exif[EXIF_SOFTWARE] = prov.software_line()
    if not str(exif.get(EXIF_DESCRIPTION, "")).strip():
        exif[EXIF_DESCRIPTION] = prov.description()
    return exif.tobytes()


def read_back(data: bytes) -> dict:
    """Provenance fields of an encoded image, as a reader finds them (Pillow): ``software`` (EXIF),
    ``description`` (EXIF), and the ``colorize:`` XMP attributes (``Model``, ``ModelSHA256``, ...)."""
    import io
    import re

    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp") or b""
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    fields = {"software": exif.get(EXIF_SOFTWARE), "description": exif.get(EXIF_DESCRIPTION)}
    for key, value in re.findall(rb'colorize:(\w+)="([^"]*)"', xmp):
        fields[key.decode()] = value.decode("utf-8")
    m = re.search(rb'DigitalSourceType="([^"]*)"', xmp)
    fields["digital_source_type"] = m.group(1).decode() if m else None
    return fields


#: The file whose checksum identifies a model directory or bundle (it lists every weight file's checksum).
META_FILES = ("bundle.json", "model.json")


def model_identity(name, meta_bytes):
    """(name, SHA-256 hex of the model's metadata file): ``name`` is the model directory's base name."""
    import hashlib

    return str(name).rstrip("/").rsplit("/", 1)[-1] or "model", hashlib.sha256(meta_bytes).hexdigest()


def local_identity(model_dir):
    """`model_identity` of a local model directory or bundle (``Provenance(*identity)`` stamps an output)."""
    import os

    from .registry import resolve_model

    model_dir = resolve_model(model_dir)

    for meta in META_FILES:
        path = os.path.join(model_dir, meta)
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                return model_identity(os.path.abspath(model_dir), fh.read())
    raise FileNotFoundError(f"{model_dir}: no {' or '.join(META_FILES)}")
