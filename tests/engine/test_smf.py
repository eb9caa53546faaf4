"""read_smf against an independent fitsio read of the same files, and its errors on bad input.

The reference (tests/smf_reference.py) reads every HDU with fitsio and builds the rows one chip
at a time; read_smf parses the FITS structure itself and fills all chips at once. Every field
of every Image, Measure and Lensing row must be the same, byte for byte.
"""

from __future__ import annotations

import fitsio
import numpy as np
import pytest
from smf_reference import reference_smf

from dvo.errors import IngestError
from dvo.photcodes import default_photcodes
from dvo.smf import read_smf


@pytest.fixture(scope="module")
def photcodes():
    return default_photcodes()


@pytest.fixture(scope="module")
def v3_survey(tmp_path_factory):
    """Two PS1_V3 exposures with lensing tables, spurious detections and dead chips."""
    from dvo.tools.simulate import SurveyConfig, simulate_survey

    out = tmp_path_factory.mktemp("smf_v3")
    config = SurveyConfig(
        seed=11,
        n_exposures=2,
        filters="iz",
        star_density=1500.0,
        spurious_rate=3.0,
        dead_chip_fraction=0.3,
        smf_format="PS1_V3",
        with_lensing=True,
    )
    simulate_survey(config, out)
    return sorted(out.glob("*.smf"))


def _assert_same(path, photcodes) -> None:
    """read_smf and the fitsio reference agree on every field of every row."""
    batch, ref = read_smf(path, photcodes), reference_smf(path, photcodes)
    assert batch.source == str(path)
    assert (batch.rejected, batch.exp_id) == (ref["rejected"], ref["exp_id"])
    for what in ("images", "measure", "meas_image", "lensing", "lens_meas"):
        got, want = getattr(batch, what), ref[what]
        assert got.dtype == want.dtype and got.shape == want.shape, what
        assert _differ(got, want) == [], f"{what} differ"


def _differ(got: np.ndarray, want: np.ndarray) -> list[str]:
    """Fields (or "values") whose bytes differ."""
    if want.dtype.names is None:
        return [] if got.tobytes() == want.tobytes() else ["values"]
    return [n for n in want.dtype.names if got[n].tobytes() != want[n].tobytes()]


def test_simulated_v5_with_lensing(tiny_survey, photcodes):
    for path in tiny_survey[0][:3]:
        _assert_same(path, photcodes)


def test_simulated_v3_with_dead_chips(v3_survey, photcodes):
    for path in v3_survey:
        _assert_same(path, photcodes)
    batches = [read_smf(path, photcodes) for path in v3_survey]
    assert min(len(b.images) for b in batches) < 10  # some of the 9 chips are dead
    assert all(len(b.lensing) > 0 for b in batches)


def _rewrite(src, dst, *, primary=None, header=None, table=None, lensing=None):
    """Copy an smf through fitsio; the callbacks edit the primary header, a chip header
    (``header(chip, hdr)``) or a table (``table(chip, data) -> data``, None drops the HDU)."""
    with (
        fitsio.FITS(str(src)) as fin,
        fitsio.FITS(str(dst), "rw", clobber=True, ignore_empty=True) as fout,
    ):
        hdr = fin[0].read_header()
        if primary:
            primary(hdr)
        fout.write(None, header=hdr)
        for hdu in fin[1:]:
            name, h = hdu.get_extname(), hdu.read_header()
            chip, kind = name.split(".")
            if kind == "hdr":
                if header:
                    header(chip, h)
                fout.write(None, header=h, extname=name)
                continue
            data = hdu.read() if hdu.get_nrows() else np.zeros(0, hdu.get_rec_dtype()[0])
            edit = table if kind == "psf" else lensing
            if edit:
                data = edit(chip, data)
                if data is None:
                    continue
            fout.write(data, header=h, extname=name)
    return dst


def _retype(data, **types):
    """``data`` with some columns converted (or dropped, for type None)."""
    fields = [(n, types.get(n, data.dtype[n])) for n in data.dtype.names if types.get(n, 1)]
    out = np.zeros(len(data), [(n, np.dtype(t).newbyteorder("=")) for n, t in fields])
    for name, _ in fields:
        out[name] = data[name]
    return out


@pytest.fixture
def smf(tiny_survey):
    return tiny_survey[0][0]


def _chips(path) -> list[str]:
    """Chip names in the order read_smf takes them."""
    with fitsio.FITS(str(path)) as f:
        return sorted(h.get_extname()[:-4] for h in f if h.get_extname().endswith(".hdr"))


def test_unusual_columns_and_values(smf, tmp_path, photcodes):
    """Unsigned and 64-bit columns, columns missing in some chips, empty and all-rejected
    chips, angles and RAs outside [0, 360), NaN and infinite values, duplicate IPP_IDET."""
    chips = _chips(smf)

    def table(chip, d):
        k = chips.index(chip)
        if k == 0:
            d = _retype(d, IPP_IDET="u4", FLAGS="u4", PSF_NDOF="i2", X_PSF="f8", FLAGS2=None)
            d["IPP_IDET"][::3] += np.uint32(2**31 + 12345)
            d["IPP_IDET"][5] = d["IPP_IDET"][4]
            d["FLAGS"][::2] |= np.uint32(0x80000000)
            d["RA_PSF"][1], d["PSF_INST_MAG"][2] = np.nan, np.inf
            d["RA_PSF"][3], d["DEC_PSF"][3] = np.nan, 95.0  # rejected: not out of range
            d["PSF_THETA"][:8] = [-30.0, -360.0, -1e-20, 400.0, -800.0, np.nan, np.inf, -0.0]
            d["POSANGLE"][:5] = [-90.0, 360.0, 1e30, -np.inf, 359.999999]
            d["PLTSCALE"][:3] = [0.0, np.nan, -1.0]
            d["PSF_FWHM_MAJ"][:3] = [np.inf, -1e9, np.nan]
            d["PSF_FWHM_MIN"][4], d["PLTSCALE"][4] = -1e9, np.inf  # row 4 is kept
        elif k == 1:
            d = d[:0]
        elif k == 2:
            d["PSF_INST_MAG"] = np.nan
        elif k == 3:
            d = _retype(d, KRON_FLUX=None, PSF_QF=None, PSF_NPIX="i8", FLAGS="f4", DEC_PSF="f4")
            d["FLAGS"][:4] = [-3.5, np.nan, 7.9, 1e12]
            d["PSF_NPIX"][:2] = [2**40 + 3, -(2**35)]
        elif k == 4:
            d = _retype(d, FLAGS="u2", PSF_NDOF="u4", PSF_CHISQ="i4", Y_PSF="i4")
            d["PSF_NDOF"][:2] = [2**31 + 5, 2**32 - 1]
            d["RA_PSF"][:3] = [-0.25, 360.5, -0.0]
        return d

    def lensing(chip, d):
        if chips.index(chip) == 0:
            d = _retype(d, IPP_IDET="u4", E1_PSF="f8")
            d["IPP_IDET"][::3] += np.uint32(2**31 + 12345)
            d["IPP_IDET"][7] = 99999999
        return d

    path = _rewrite(smf, tmp_path / "odd.smf", table=table, lensing=lensing)
    _assert_same(path, photcodes)
    batch = read_smf(path, photcodes)
    assert batch.rejected >= len(read_smf(smf, photcodes).measure) // len(chips)


def test_header_variants(smf, tmp_path, photcodes):
    """CDELT/PC instead of CD, optional chip keywords missing, numbers written as text,
    INSTRUME missing."""
    chips = _chips(smf)

    def primary(h):
        h.delete("INSTRUME")
        h["AIRMASS"] = "1.25"

    def header(chip, h):
        k = chips.index(chip)
        if k == 0:
            cd = [h[key] for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2")]
            for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2"):
                h.delete(key)
            h["CDELT1"], h["CDELT2"] = 2 * cd[0], 2 * cd[3]
            h["PC1_1"], h["PC2_2"] = 0.5, 0.5
        elif k == 1:
            for key in ("ZPT_OBS", "ZPT_ERR", "IMAGEID", "CERROR", "FWHM_X", "CTYPE1"):
                h.delete(key)
        elif k == 2:
            h["CRVAL1"] = int(round(h["CRVAL1"]))
            h["FWHM_Y"] = "3.5"

    path = _rewrite(smf, tmp_path / "headers.smf", primary=primary, header=header)
    _assert_same(path, photcodes)


def test_no_chips(smf, tmp_path, photcodes):
    """Every chip dead: the exposure row only."""
    path = tmp_path / "dead.smf"
    path.write_bytes(smf.read_bytes()[: _hdu_offsets(smf)[1][0]])
    _assert_same(path, photcodes)
    assert len(read_smf(path, photcodes).images) == 1


# ---------------------------------------------------------------------------------------------
# Bad input: one IngestError per file, naming the file and the problem on one line


def _rejected(path, photcodes, match: str) -> str:
    with pytest.raises(IngestError) as info:
        read_smf(path, photcodes)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert match in message
    return message


def _hdu_offsets(path) -> list[tuple[int, int, int]]:
    """(header start, data start, data end) of each HDU."""
    with fitsio.FITS(str(path)) as f:
        return [tuple(h.get_offsets().values()) for h in f]


def test_truncated_anywhere(smf, tmp_path, photcodes):
    data, hdus = smf.read_bytes(), _hdu_offsets(smf)
    last = hdus[-1]
    cuts = [10, hdus[1][0] + 80, hdus[2][0] + 2880 + 100, hdus[2][1] + 100]
    cuts.append((last[1] + last[2]) // 2)
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.smf"
        bad.write_bytes(data[:cut])
        read_smf(smf, photcodes)  # the reused read buffer now holds the whole file after the cut
        _rejected(bad, photcodes, "unreadable FITS")
    bad = tmp_path / "no_psf.smf"  # ends after a chip header: that chip has no table
    bad.write_bytes(data[: hdus[2][0]])
    _rejected(bad, photcodes, "has a header but no")


def test_not_fits_and_trailing_bytes(smf, tmp_path, photcodes):
    bad = tmp_path / "garbage.smf"
    for junk in (b"this is not a FITS file\n" * 200, b"", b"SIMPLE  =" + b"x" * 100):
        bad.write_bytes(junk)
        _rejected(bad, photcodes, "unreadable FITS")
    for junk in (b"XTENSION= 'BINTABLE'", b"junk" * 720):
        bad.write_bytes(smf.read_bytes() + junk)
        _rejected(bad, photcodes, "unreadable FITS")
    padded = tmp_path / "padded.smf"  # zero blocks after the last HDU are allowed
    padded.write_bytes(smf.read_bytes() + b"\0" * 2880 * 2)
    assert (
        read_smf(padded, photcodes).measure.tobytes() == read_smf(smf, photcodes).measure.tobytes()
    )


def test_missing_or_bad_keywords(smf, tmp_path, photcodes):
    path = _rewrite(smf, tmp_path / "a.smf", primary=lambda h: h.delete("EXPTIME"))
    _rejected(path, photcodes, "primary header lacks EXPTIME")
    path = _rewrite(smf, tmp_path / "b.smf", primary=lambda h: h.__setitem__("EXPTIME", "x"))
    _rejected(path, photcodes, "keyword EXPTIME is not a number")
    path = _rewrite(smf, tmp_path / "c.smf", primary=lambda h: h.__setitem__("FILTER", "q"))
    _rejected(path, photcodes, "unknown photcode GPC1.q.")
    first = _chips(smf)[0]
    path = _rewrite(smf, tmp_path / "d.smf", header=lambda c, h: h.delete("CRPIX1"))
    _rejected(path, photcodes, f"{first}.hdr lacks CRPIX1")
    path = _rewrite(smf, tmp_path / "e.smf", header=lambda c, h: h.__setitem__("CRVAL2", "n"))
    _rejected(path, photcodes, f"{first}.hdr keyword CRVAL2 is not a number")


def test_bad_tables(smf, tmp_path, photcodes):
    chips = _chips(smf)
    path = _rewrite(smf, tmp_path / "a.smf", table=lambda c, d: _retype(d, DEC_PSF=None))
    _rejected(path, photcodes, f"{chips[0]}.psf lacks columns DEC_PSF")
    path = _rewrite(smf, tmp_path / "b.smf", table=lambda c, d: _retype(d, RA_PSF="S8"))
    _rejected(path, photcodes, f"{chips[0]}.psf column RA_PSF has unsupported format")
    path = _rewrite(smf, tmp_path / "c.smf", lensing=lambda c, d: _retype(d, IPP_IDET=None))
    _rejected(path, photcodes, f"{chips[0]}.lensing lacks column IPP_IDET")

    def no_table(chip, d):
        return None if chip == chips[1] else d

    path = _rewrite(smf, tmp_path / "d.smf", table=no_table)
    _rejected(path, photcodes, f"chip {chips[1]} has a header but no {chips[1]}.psf table")

    def out_of_range(chip, d):
        if chip in (chips[2], chips[4]):
            d["DEC_PSF"][-1] = -90.5
        return d

    path = _rewrite(smf, tmp_path / "e.smf", table=out_of_range)
    _rejected(path, photcodes, f"{chips[2]}.psf has coordinates out of range")


def test_scaled_column(smf, tmp_path, photcodes):
    """A TSCAL/TZERO other than the unsigned-integer convention is refused by name."""
    data = bytearray(smf.read_bytes())
    start, end = _hdu_offsets(smf)[2][:2]  # the first .psf header
    i = next(i for i in range(start, end, 80) if data[i : i + 8] == b"END     ")
    assert i + 80 < end and not data[i + 80 : i + 160].strip()  # room for one more card
    data[i + 80 : i + 160] = data[i : i + 80]
    data[i : i + 80] = f"{'TSCAL2':<8}= {'2.0':>20}".ljust(80).encode("ascii")
    bad = tmp_path / "scaled.smf"
    bad.write_bytes(bytes(data))
    _rejected(bad, photcodes, "X_PSF has unsupported scaling TSCAL=2.0")
