"""Image utilities: describe an image (size, format, dominant colours) or transform it
(thumbnail, greyscale, resize, rotate, convert) with Pillow.

- binary body (a PNG, JPEG, GIF, WebP, BMP or TIFF file)  -> JSON description
- {"op": "info", "image_base64": "..."}                    -> JSON description
- {"op": "thumbnail" | "grayscale" | "resize" | "rotate" | "convert", "image_base64": "...", ...}
                                                           -> the new image, as binary
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = 40_000_000  # refuse decompression bombs early
MAX_SIDE = 4096  # largest side of an image we produce
DOMINANT_COLOURS = 5
MERGE_DISTANCE = 32  # RGB distance under which two shades count as one colour
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
OPERATIONS = ("info", "thumbnail", "grayscale", "resize", "rotate", "convert")


def _open(data: bytes) -> Image.Image:
    if not data:
        raise ValueError("the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(
            f"the image has too many pixels (limit {Image.MAX_IMAGE_PIXELS:,})"
        ) from None
    except UnidentifiedImageError:
        raise ValueError(
            "not an image Pillow can read (send PNG, JPEG, GIF, WebP, BMP or TIFF)"
        ) from None
    except (OSError, SyntaxError) as error:
        raise ValueError(f"the image is damaged or truncated: {error}") from None
    return image


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb[:3])


def describe(image: Image.Image, size_bytes: int) -> dict:
    upright = ImageOps.exif_transpose(image)
    rgb = upright.convert("RGB")
    sample = rgb.copy()
    sample.thumbnail((200, 200))  # colour analysis on at most 40,000 pixels
    quantized = sample.quantize(colors=2 * DOMINANT_COLOURS, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    clusters = []  # [count, r, g, b]: palette entries, near-identical shades merged
    for count, index in sorted(quantized.getcolors() or [], reverse=True):
        rgb = palette[3 * index : 3 * index + 3]
        for cluster in clusters:
            if sum((cluster[i + 1] - rgb[i]) ** 2 for i in range(3)) < MERGE_DISTANCE**2:
                total = cluster[0] + count
                cluster[1:] = [
                    (cluster[i + 1] * cluster[0] + rgb[i] * count) / total for i in range(3)
                ]
                cluster[0] = total
                break
        else:
            clusters.append([count, *rgb])
    clusters.sort(key=lambda cluster: -cluster[0])
    total = sum(cluster[0] for cluster in clusters) or 1
    dominant = []
    for count, *rgb in clusters[:DOMINANT_COLOURS]:
        rgb = [round(v) for v in rgb]
        dominant.append({"hex": _hex(rgb), "rgb": rgb, "share": round(count / total, 4)})
    pixels = sample.width * sample.height
    average = [round(sum(band.getdata()) / pixels) for band in sample.split()]
    exif = image.getexif()
    return {
        "width": upright.width,
        "height": upright.height,
        "stored_width": image.width,
        "stored_height": image.height,
        "format": image.format,
        "mode": image.mode,
        "has_alpha": image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info,
        "animated": bool(getattr(image, "is_animated", False)),
        "frames": int(getattr(image, "n_frames", 1)),
        "megapixels": round(upright.width * upright.height / 1e6, 3),
        "aspect_ratio": round(upright.width / upright.height, 4),
        "exif_orientation": int(exif.get(0x0112, 1)),
        "bytes": size_bytes,
        "average_colour": {"hex": _hex(average), "rgb": average},
        "dominant_colours": dominant,
    }


def _decode(payload: dict) -> bytes:
    encoded = payload.get("image_base64")
    if not isinstance(encoded, str) or not encoded:
        raise ValueError('"image_base64" must be the image file, base64-encoded')
    if encoded.startswith("data:") and "," in encoded:  # accept data: URLs too
        encoded = encoded.split(",", 1)[1]
    try:
        return base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        raise ValueError('"image_base64" is not valid base64') from None


def _size(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise ValueError(f'"{name}" must be an integer from 1 to {MAX_SIDE}')
    return value


def _encode(image: Image.Image, fmt: str, quality: int = 85) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        if image.mode in ("RGBA", "LA", "P"):
            background = Image.new("RGB", image.size, (255, 255, 255))
            rgba = image.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            image = background
        elif image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=quality, optimize=True)
    else:
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1"):
            image = image.convert("RGBA")
        image.save(out, fmt, optimize=True) if fmt == "PNG" else image.save(
            out, fmt, quality=quality
        )
    return out.getvalue()


def transform(image: Image.Image, payload: dict) -> bytes:
    op = payload["op"]
    fmt_name = str(payload.get("format", "png")).lower()
    if fmt_name not in OUTPUT_FORMATS:
        raise ValueError(f'"format" must be one of: {", ".join(OUTPUT_FORMATS)}')
    quality = payload.get("quality", 85)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError('"quality" must be an integer from 1 to 100')
    image = ImageOps.exif_transpose(image)
    if op == "thumbnail":
        size = _size(payload.get("size", 128), "size")
        image = image.copy()
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
    elif op == "grayscale":
        image = ImageOps.grayscale(image.convert("RGBA") if image.mode == "P" else image)
    elif op == "resize":
        width, height = payload.get("width"), payload.get("height")
        if width is None and height is None:
            raise ValueError('"resize" needs "width", "height" or both')
        if width is None:
            height = _size(height, "height")
            width = max(1, round(image.width * height / image.height))
        elif height is None:
            width = _size(width, "width")
            height = max(1, round(image.height * width / image.width))
        width, height = _size(width, "width"), _size(height, "height")
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    elif op == "rotate":
        degrees = payload.get("degrees", 90)
        if isinstance(degrees, bool) or not isinstance(degrees, (int, float)):
            raise ValueError('"degrees" must be a number (counter-clockwise)')
        image = image.rotate(degrees, expand=True, resample=Image.Resampling.BICUBIC)
    # "convert" only re-encodes
    return _encode(image, OUTPUT_FORMATS[fmt_name], quality)


def apply(input):
    if isinstance(input, (bytes, bytearray)):
        data = bytes(input)
        return describe(_open(data), len(data))
    if not isinstance(input, dict):
        raise ValueError(
            "send an image file as a binary body, or JSON "
            '{"op": "info" | "thumbnail" | "grayscale" | '
            '"resize" | "rotate" | "convert", "image_base64": "..."}'
        )
    op = input.get("op", "info")
    if op not in OPERATIONS:
        raise ValueError(f'unknown "op" {op!r}; choose one of: {", ".join(OPERATIONS)}')
    data = _decode(input)
    image = _open(data)
    if op == "info":
        return describe(image, len(data))
    return transform(image, {**input, "op": op})
