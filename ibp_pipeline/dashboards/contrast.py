"""Colour arithmetic for accessibility checks: WCAG 2.x contrast, CIE lightness and colour-vision simulation.

Pure functions of hex colours, so the theme's text colours and chart palettes are tested against WCAG 2.2 AA
(4.5:1 for small text) and for colour-blind readers, rather than judged by eye."""
from __future__ import annotations

# Machado, Oliveira and Fernandes (2009), "A physiologically-based model for simulation of color vision
# deficiency", severity 1.0 matrices, applied to linear RGB.
CVD_MATRICES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}

AA_TEXT = 4.5  # WCAG 2.2 success criterion 1.4.3, normal-size text
AA_NON_TEXT = 3.0  # 1.4.11: focus rings, chart marks, large text


def rgb(colour: str) -> tuple[float, float, float]:
    """'#005EB8' (or '005EB8', or '#05B') -> sRGB channels in 0..1."""
    h = colour.strip().lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    if len(h) != 6:
        raise ValueError(f"not a hex colour: {colour!r}")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def to_hex(channels: tuple[float, float, float]) -> str:
    """sRGB channels in 0..1 (clipped) -> '#RRGGBB'."""
    return "#" + "".join(f"{round(min(1.0, max(0.0, c)) * 255):02X}" for c in channels)


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _gamma(c: float) -> float:
    c = min(1.0, max(0.0, c))
    return c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance: 0 for black, 1 for white."""
    r, g, b = (_linear(c) for c in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG contrast ratio (L1 + 0.05) / (L2 + 0.05), from 1 (same colour) to 21 (black on white)."""
    a, b = relative_luminance(foreground), relative_luminance(background)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def lab(colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour: L* is perceived lightness, 0 (black) to 100 (white)."""
    r, g, b = (_linear(c) for c in rgb(colour))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def lightness(colour: str) -> float:
    """CIE L* of a colour (0 to 100)."""
    return lab(colour)[0]


def colour_difference(a: str, b: str) -> float:
    """CIE76 delta E between two colours: about 2.3 is just noticeable; 20+ reads as clearly different."""
    return sum((p - q) ** 2 for p, q in zip(lab(a), lab(b))) ** 0.5


def simulate(colour: str, deficiency: str) -> str:
    """The colour as seen with a colour-vision deficiency ('protanopia', 'deuteranopia', 'tritanopia')."""
    matrix = CVD_MATRICES[deficiency]
    lin = [_linear(c) for c in rgb(colour)]
    out = tuple(_gamma(sum(m * c for m, c in zip(row, lin))) for row in matrix)
    return to_hex(out)  # type: ignore[arg-type]


def darken_until(fill: str, text: str, minimum: float = AA_TEXT) -> str:
    """The fill, darkened in small steps (same hue) until `text` on it reaches `minimum` contrast; a pill keeps
    its meaning colour while its label stays readable."""
    channels = rgb(fill)
    for _ in range(100):
        candidate = to_hex(channels)
        if contrast_ratio(text, candidate) >= minimum:
            return candidate
        channels = tuple(c * 0.97 for c in channels)  # type: ignore[assignment]
    return to_hex(channels)
