"""``data.images``: what is decoded, how, and what is refused with one clear error."""
import struct
import zlib

import cv2
import numpy as np
import pytest

from mechanism.data.images import image_shape, load_image, load_mask
from mechanism.errors import MechanismError


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width × height`` grey pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
            + chunk(b"IEND", b""))


def test_an_image_declaring_more_pixels_than_the_limit_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_declaring(100_000, 100_000))
    with pytest.raises(MechanismError, match=r"cannot decode image .*bomb.png \(.*CV_IO_MAX_IMAGE_PIXELS"):
        load_image(path, 32)


def test_float_pixels_are_refused(tmp_path):
    path = tmp_path / "float.tiff"
    assert cv2.imwrite(str(path), np.full((8, 8), 0.5, np.float32))
    with pytest.raises(MechanismError, match="float32 pixels: only 8- and 16-bit"):
        load_image(path, 8)


def test_sixteen_bit_images_scale_to_eight_bit(tmp_path):
    grey8 = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    cv2.imwrite(str(tmp_path / "g8.png"), grey8)
    cv2.imwrite(str(tmp_path / "g16.png"), grey8.astype(np.uint16) * 257)
    eight, sixteen = load_image(tmp_path / "g8.png", 8), load_image(tmp_path / "g16.png", 8)
    assert eight.shape == (3, 8, 8) and np.array_equal(eight, sixteen)
    assert np.array_equal(eight[0], grey8 / np.float32(255)) and np.array_equal(eight[0], eight[2])


def test_missing_and_garbage_files_are_one_error(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not a png")
    for name in ("absent.png", "junk.png"):
        with pytest.raises(MechanismError, match="cannot read image"):
            load_image(tmp_path / name, 8)
    with pytest.raises(MechanismError, match="cannot read image"):
        load_mask(tmp_path / "junk.png", 8)


def test_a_mask_must_have_its_images_size(tmp_path):
    cv2.imwrite(str(tmp_path / "img.png"), np.zeros((40, 60, 3), np.uint8))
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 30:50] = 255
    cv2.imwrite(str(tmp_path / "ok_mask.png"), mask)
    cv2.imwrite(str(tmp_path / "small_mask.png"), mask[::2, ::2])
    assert image_shape(tmp_path / "img.png") == (40, 60)
    loaded = load_mask(tmp_path / "ok_mask.png", 20, tmp_path / "img.png")
    assert loaded.shape == (20, 20) and loaded.sum() == 5 * 7      # rows 5–9, columns 10–16
    with pytest.raises(MechanismError, match=r"small_mask.png is 30×20 pixels but its image "
                                             r".*img.png is 60×40"):
        load_mask(tmp_path / "small_mask.png", 20, tmp_path / "img.png")
