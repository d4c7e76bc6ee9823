"""The QM9 loader, on a small copy of the qm9pack data files (real rows, real format) served by
a monkeypatched fetch: the target mapping, the atom and SMILES counts, the Coulomb-matrix
eigenvalues (checked against a hand computation for water), and the parquet cache."""

from __future__ import annotations

import ast
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polytask.data import qm9

# The first line of every qm9_part*.csv, then five real rows of qm9_part1.csv: CH4 (1), NH3 (2),
# H2O (3), a zwitterion with charged atoms (282), and a ring with double and triple bonds whose
# coordinates use the E notation (3825: "-1.1025E-6").
HEADER = r"""XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop,Harmonic_Freq_cmi,RotA_GHz,RotB_GHz,RotC_GHz,Dipole_debye,Polarizability_bohr3,HOMO_au,LUMO_au,HOMO_LUMO_gap_au,R2_bohr2,ZPVE_au,InternalEnergy_0K_au,InternalEnergy_298K_au,Enthalphy_298K_au,GibbsFreeEnergy_298K_au,Heatcapacity_Cv_cal_mol_K"""
ROWS = {
    1: r""""dsgdb9nsd_000001.xyz",1,"C","InChI=1S/CH4/h1H4",5,"[4,1,0,0,0]","['C','H','H','H','H']","[[-0.0126981359,1.0858041578,0.0080009958],[0.002150416,-0.0060313176,0.0019761204],[1.0117308433,1.4637511618,0.0002765748],[-0.540815069,1.4475266138,-0.8766437152],[-0.5238136345,1.4379326443,0.9063972942]]","[-0.535689,0.133921,0.133922,0.133923,0.133923]","[1341.307,1341.3284,1341.365,1562.6731,1562.7453,3038.3205,3151.6034,3151.6788,3151.7078]",157.7118,157.70997,157.70699,0.,13.21,-0.3877,0.1171,0.5048,35.3641,0.044749,-40.47893,-40.476062,-40.475117,-40.498597,6.469""",
    2: r""""dsgdb9nsd_000002.xyz",2,"N","InChI=1S/H3N/h1H3",4,"[3,0,1,0,0]","['N','H','H','H']","[[-0.0404260543,1.0241077531,0.0625637998],[0.0172574639,0.0125452063,-0.0273771593],[0.9157893661,1.3587451948,-0.0287577581],[-0.5202777357,1.3435321258,-0.7755426124]]","[-0.707143,0.235712,0.235712,0.23572]","[1103.8733,1684.1158,1684.3072,3458.7145,3575.2414,3575.3343]",293.60975,293.54111,191.39397,1.6256,9.46,-0.257,0.0829,0.3399,26.1563,0.034358,-56.525887,-56.523026,-56.522082,-56.544961,6.316""",
    3: r""""dsgdb9nsd_000003.xyz",3,"O","InChI=1S/H2O/h1H2",3,"[2,0,0,1,0]","['O','H','H']","[[-0.0343604951,0.9775395708,0.0076015923],[0.0647664923,0.0205721989,0.0015346341],[0.8717903737,1.3007924048,0.0006931336]]","[-0.589706,0.294853,0.294853]","[1671.4222,3803.6305,3907.698]",799.58812,437.90386,282.94545,1.8511,6.31,-0.2928,0.0687,0.3615,19.0002,0.021375,-76.404702,-76.401867,-76.400922,-76.422349,6.002""",
    282: r""""dsgdb9nsd_000282.xyz",282,"NC(=[NH2+])C([O-])=O","InChI=1S/C2H4N2O2/c3-1(4)2(5)6/h(H3,3,4)(H,5,6)",10,"[4,2,2,2,0]","['N','C','N','H','H','C','O','O','H','H']","[[-0.0056014586,1.3643185157,0.0079687075],[0.1096859342,0.0601990904,0.0008375486],[1.2012635937,-0.662504903,-0.0138587042],[0.9771018785,-1.6598268824,-0.0162714712],[2.1481836917,-0.3192554569,-0.0219277543],[-1.2549265355,-0.7524903368,0.0114870534],[-2.2363853202,-0.0015495271,0.0251643627],[-1.0623065555,-1.9732484468,0.0039515725],[0.7473257112,2.0333674704,0.0037700239],[-0.9891584095,1.6424551566,0.0194563911]]","[-0.480302,0.321464,-0.480298,0.298615,0.273811,0.406487,-0.456089,-0.456111,0.27381,0.298613]","[129.6039,258.4724,357.2422,386.3741,469.3487,538.4287,582.5047,589.1278,778.4489,797.1801,805.3934,839.0381,1058.4931,1115.8695,1303.0426,1410.1304,1482.5841,1589.2179,1759.5138,1848.3017,3413.1659,3438.7708,3660.3493,3662.7486]",5.47512,3.91202,2.28171,8.5052,41.06,-0.2349,-0.0376,0.1973,506.6426,0.073524,-338.530072,-338.524237,-338.523292,-338.559249,20.891""",
    3825: r""""dsgdb9nsd_003825.xyz",3825,"N#CC1=NOC=N1","InChI=1S/C3HN3O/c4-1-3-5-2-7-6-3/h2H",8,"[1,3,3,1,0]","['N','C','C','N','O','C','N','H']","[[0.0349066476,-1.1282263216,-0.0038504529],[0.0025167298,0.0263510207,0.0028249505],[-0.0238974585,1.4525546658,0.0108874201],[-1.1556982919,2.1190611872,0.0295176996],[-0.7364844205,3.4390738653,0.0311122736],[0.6007213698,3.4191182292,0.0132301353],[1.1130275613,2.231269445,-1.1025E-6],[1.1098552624,4.3713536684,0.0116226664]]","[-0.303666,0.285328,0.280725,-0.142246,-0.131364,0.108512,-0.286674,0.189385]","[185.4088,185.58,497.1404,560.6245,591.8809,635.526,768.2547,906.8299,948.533,988.2272,1009.8822,1129.2184,1295.2452,1348.5415,1490.5869,1566.1854,2377.9957,3276.7842]",10.09678,2.0721,1.71926,4.1925,46.41,-0.3241,-0.0819,0.2422,627.7821,0.045022,-354.29246,-354.287433,-354.286489,-354.321434,17.121""",
}
# qm9_polarizability.csv: the polarizability tensors (not read by the loader)
POLARIZABILITY = [
    "XYZ_file,A_xx,A_xy,A_yy,A_xz,A_yz,A_zz",
    r""""dsgdb9nsd_000001.xyz",13.211,0.000,13.211,0.000,0.000,13.211""",
    r""""dsgdb9nsd_000002.xyz",10.439,0.000,10.438,0.000,0.000,7.504""",
    r""""dsgdb9nsd_000003.xyz",4.492,0.000,8.049,0.000,0.000,6.398""",
    r""""dsgdb9nsd_000282.xyz",47.452,0.000,53.795,-0.002,0.000,21.927""",
    r""""dsgdb9nsd_003825.xyz",73.715,-1.523,40.501,0.000,0.000,25.024""",
]
IDS = [1, 2, 3, 282, 3825]
# Which package file each row goes to: all three parts are read, in order.
PARTS = {"qm9_part1.csv": [1, 2, 3], "qm9_part2.csv": [282], "qm9_part3.csv": [3825]}


def _write_package(folder, rows=ROWS):
    folder.mkdir(parents=True, exist_ok=True)
    for name, ids in PARTS.items():
        (folder / name).write_text("\n".join([HEADER, *(rows[i] for i in ids)]) + "\n")
    (folder / "qm9_polarizability.csv").write_text("\n".join(POLARIZABILITY) + "\n")


@pytest.fixture
def fake_qm9(tmp_path, monkeypatch):
    """The qm9 artifact's folder, written into tmp_path; returns the list of fetch calls."""
    folder = tmp_path / "unpacked" / "qm9pack" / "data"
    _write_package(folder)
    calls = []

    def fetch(name, progress=True):
        calls.append(name)
        return folder

    monkeypatch.setattr(qm9, "fetch", fetch)
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))
    return calls


def _source_numbers(index: int) -> dict[str, object]:
    """A row of the fake files as the source's column name -> value (lists parsed)."""
    frame = pd.read_csv(io.StringIO(HEADER + "\n" + ROWS[index]))
    return frame.iloc[0].to_dict()


def test_column_lists():
    assert qm9.TARGET_COLUMNS == ("mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "u0", "u298", "h298", "g298", "cv")
    assert set(qm9.UNITS) == set(qm9.TARGET_COLUMNS)
    assert qm9.UNITS["mu"] == "Debye" and qm9.UNITS["alpha"] == "bohr^3" and qm9.UNITS["r2"] == "bohr^2" and qm9.UNITS["cv"] == "cal/(mol K)"
    assert {qm9.UNITS[t] for t in ("homo", "lumo", "gap", "zpve", "u0", "u298", "h298", "g298")} == {"hartree"}
    assert qm9.DESCRIPTOR_COLUMNS[:15] == (
        "n_atoms", "n_heavy_atoms", "n_h", "n_c", "n_n", "n_o", "n_f",
        "n_single_bonds", "n_double_bonds", "n_triple_bonds", "n_aromatic_bonds", "n_ring_closures", "n_charged_atoms",
        "radius_of_gyration", "nuclear_repulsion",
    )  # fmt: skip
    assert qm9.DESCRIPTOR_COLUMNS[15:] == tuple(f"cm_eig_{i:02d}" for i in range(1, 30))
    assert qm9.COLUMNS == ("id", "smiles", *qm9.DESCRIPTOR_COLUMNS, *qm9.TARGET_COLUMNS)
    # nothing the DFT computed is a feature
    assert not {"mulliken", "freq", "rot"} & {part for c in qm9.DESCRIPTOR_COLUMNS for part in c.split("_")}


def test_rows_ids_and_targets(fake_qm9):
    frame = qm9.load()["train"]
    assert list(frame.columns) == list(qm9.COLUMNS)
    assert frame["id"].tolist() == IDS
    assert frame["smiles"].tolist() == ["C", "N", "O", "NC(=[NH2+])C([O-])=O", "N#CC1=NOC=N1"]
    assert not frame.isna().any().any()
    # methane and water, as the files give them
    methane = frame.iloc[0][list(qm9.TARGET_COLUMNS)].tolist()
    assert methane == [0.0, 13.21, -0.3877, 0.1171, 0.5048, 35.3641, 0.044749, -40.47893, -40.476062, -40.475117, -40.498597, 6.469]
    water = frame.iloc[2][list(qm9.TARGET_COLUMNS)].tolist()
    assert water == [1.8511, 6.31, -0.2928, 0.0687, 0.3615, 19.0002, 0.021375, -76.404702, -76.401867, -76.400922, -76.422349, 6.002]
    for position, index in enumerate(IDS):  # every target from its source column
        source = _source_numbers(index)
        for target, column in qm9.SOURCE_TARGETS.items():
            assert frame.loc[position, target] == source[column], (index, target)
    assert qm9.SOURCE_TARGETS["h298"] == "Enthalphy_298K_au" and qm9.SOURCE_TARGETS["mu"] == "Dipole_debye"


def test_element_counts(fake_qm9):
    frame = qm9.load()["train"].set_index("id")
    columns = ["n_atoms", "n_heavy_atoms", "n_h", "n_c", "n_n", "n_o", "n_f"]
    assert frame.loc[1, columns].tolist() == [5, 1, 4, 1, 0, 0, 0]  # CH4
    assert frame.loc[2, columns].tolist() == [4, 1, 3, 0, 1, 0, 0]  # NH3
    assert frame.loc[3, columns].tolist() == [3, 1, 2, 0, 0, 1, 0]  # H2O
    assert frame.loc[282, columns].tolist() == [10, 6, 4, 2, 2, 2, 0]  # C2H4N2O2
    assert frame.loc[3825, columns].tolist() == [8, 7, 1, 3, 3, 1, 0]  # C3HN3O
    for index in IDS:  # the source's Stoichiometry is [H, C, N, O, F]
        stoichiometry = ast.literal_eval(_source_numbers(index)["Stoichiometry"])
        assert frame.loc[index, ["n_h", "n_c", "n_n", "n_o", "n_f"]].tolist() == stoichiometry


def _counts(single=0, double=0, triple=0, aromatic=0, rings=0, charged=0):
    return dict(zip(qm9.SMILES_COLUMNS, (single, double, triple, aromatic, rings, charged)))


@pytest.mark.parametrize(
    "smiles, expected",
    [
        ("C", _counts()),
        ("O", _counts()),
        ("CC", _counts(single=1)),
        ("C=O", _counts(double=1)),
        ("C#N", _counts(triple=1)),
        ("CC(=O)O", _counts(single=2, double=1)),
        ("[NH3+]CC([O-])=O", _counts(single=3, double=1, charged=2)),
        ("NC(=[NH2+])C([O-])=O", _counts(single=3, double=2, charged=2)),
        ("c1ccccc1", _counts(aromatic=6, rings=1)),
        ("c1ccccc1-c1ccccc1", _counts(single=1, aromatic=12, rings=2)),  # biphenyl: "-" between aromatic atoms
        ("c1cc[nH]c1", _counts(aromatic=5, rings=1)),  # pyrrole
        ("Cc1ccccc1", _counts(single=1, aromatic=6, rings=1)),  # aromatic-aliphatic: single
        ("C1=CC=CC=C1", _counts(single=3, double=3, rings=1)),  # Kekulé benzene, as QM9 writes it
        ("C1CC1", _counts(single=3, rings=1)),
        ("C=1CC1", _counts(single=2, double=1, rings=1)),  # the ring bond's symbol at its opening
        ("C1CC=1", _counts(single=2, double=1, rings=1)),  # ... or at its closing
        ("N#CC1=NOC=N1", _counts(single=4, double=2, triple=1, rings=1)),
        ("C12CC1C2", _counts(single=5, rings=2)),
        ("C%10CC%10", _counts(single=3, rings=1)),
        ("CC.O", _counts(single=1)),  # "." is no bond
        ("F/C=C/F", _counts(single=2, double=1)),
        ("O=N(=O)C", _counts(single=1, double=2)),  # nitro written with a pentavalent N, as in QM9
        ("ClCBr", _counts(single=2)),
        ("[13CH3][C@@H](O)[O-]", _counts(single=3, charged=1)),
    ],
)
def test_smiles_counts(smiles, expected):
    assert qm9.smiles_counts(smiles) == expected


@pytest.mark.parametrize("smiles", ["C1CC", "C(C", "CC)", "C$C", "C==C", "C%1", "C x", "=C", "C="])
def test_smiles_counts_refuses_what_it_cannot_read(smiles):
    with pytest.raises(ValueError, match="SMILES"):
        qm9.smiles_counts(smiles)


def test_smiles_counts_in_the_frame(fake_qm9):
    frame = qm9.load()["train"].set_index("id")
    columns = list(qm9.SMILES_COLUMNS)
    assert frame.loc[1, columns].tolist() == [0, 0, 0, 0, 0, 0]
    assert frame.loc[282, columns].tolist() == [3, 2, 0, 0, 0, 2]
    assert frame.loc[3825, columns].tolist() == [4, 2, 1, 0, 1, 0]
    bonds = frame[["n_single_bonds", "n_double_bonds", "n_triple_bonds", "n_aromatic_bonds"]].sum(axis=1)
    assert (bonds == frame["n_heavy_atoms"] - 1 + frame["n_ring_closures"]).all()  # connected molecules


# Water (row 3), by hand. Coordinates (Å): O (-0.0343604951, 0.9775395708, 0.0076015923),
# H (0.0647664923, 0.0205721989, 0.0015346341), H (0.8717903737, 1.3007924048, 0.0006931336).
# Distances: O-H 0.9621068 Å (both) = 1.8181184 bohr; H-H 1.5133579 Å = 2.8598319 bohr
# (1 bohr = 0.529177210903 Å). Coulomb matrix, atoms in the order O, H, H:
#   C_OO = 0.5 * 8^2.4 = 73.5166947,  C_HH = 0.5 * 1^2.4 = 0.5,
#   C_OH = 8 * 1 / 1.8181184 = 4.4001535,  C_HH' = 1 * 1 / 2.8598319 = 0.3496709.
# C = [[a, b, b], [b, c, e], [b, e, c]]: the eigenvector (0, 1, -1) gives c - e = 0.1503291; the
# symmetric ones the eigenvalues of [[a, sqrt(2) b], [sqrt(2) b, c + e]]:
#   (a + c + e +- sqrt((a - c - e)^2 + 8 b^2)) / 2 = 74.0457219 and 0.3206437.
WATER_EIGENVALUES = [74.0457219, 0.3206437, 0.1503291]  # by decreasing absolute value
WATER_NUCLEAR_REPULSION = 2 * 4.4001535 + 0.3496709  # = 9.1499780 hartree
WATER_RADIUS_OF_GYRATION = 0.3149042  # Å, masses 15.999 and 1.008


def test_coulomb_matrix_eigenvalues_of_water(fake_qm9):
    frame = qm9.load()["train"].set_index("id")
    o, h1, h2 = ast.literal_eval(_source_numbers(3)["XYZ_Ang"])
    bohr = 0.529177210903
    a, c = 0.5 * 8**2.4, 0.5
    b, e = 8 / (math.dist(o, h1) / bohr), 1 / (math.dist(h1, h2) / bohr)
    assert math.isclose(math.dist(o, h1), math.dist(o, h2), rel_tol=1e-9)  # the closed form above holds
    root = math.sqrt((a - c - e) ** 2 + 8 * b * b)
    assert [(a + c + e + root) / 2, (a + c + e - root) / 2, c - e] == pytest.approx(WATER_EIGENVALUES, abs=1e-7)
    eigenvalues = frame.loc[3, list(qm9.EIGENVALUE_COLUMNS)].to_numpy(float)
    assert eigenvalues[:3] == pytest.approx(WATER_EIGENVALUES, abs=1e-7)
    assert (eigenvalues[3:] == 0).all() and len(eigenvalues) == 29
    assert frame.loc[3, "nuclear_repulsion"] == pytest.approx(WATER_NUCLEAR_REPULSION, abs=1e-6)
    assert frame.loc[3, "radius_of_gyration"] == pytest.approx(WATER_RADIUS_OF_GYRATION, abs=1e-7)


def _direct_geometry(index: int) -> tuple[np.ndarray, float, float]:
    """Eigenvalues (padded to 29), nuclear repulsion and radius of gyration of one source row,
    computed atom pair by atom pair."""
    source = _source_numbers(index)
    symbols = ast.literal_eval(source["Elements"])
    positions = ast.literal_eval(source["XYZ_Ang"])  # parses "-1.1025E-6" too
    z = [qm9.ATOMIC_NUMBERS[s] for s in symbols]
    n = len(z)
    matrix = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            matrix[i, j] = 0.5 * z[i] ** 2.4 if i == j else z[i] * z[j] / (math.dist(positions[i], positions[j]) * qm9.BOHR_PER_ANGSTROM)
    values = np.linalg.eigvalsh(matrix)
    values = values[np.argsort(-np.abs(values))]
    mass = np.array([qm9.ATOMIC_MASSES[s] for s in symbols])
    r = np.array(positions)
    centre = (mass[:, None] * r).sum(0) / mass.sum()
    gyration = math.sqrt((mass * ((r - centre) ** 2).sum(1)).sum() / mass.sum())
    return np.concatenate([values, np.zeros(29 - n)]), (matrix.sum() - np.trace(matrix)) / 2, gyration


def test_geometry_of_every_row_and_padding(fake_qm9):
    frame = qm9.load()["train"].set_index("id")
    for index in IDS:
        eigenvalues, repulsion, gyration = _direct_geometry(index)
        got = frame.loc[index, list(qm9.EIGENVALUE_COLUMNS)].to_numpy(float)
        assert got == pytest.approx(eigenvalues, rel=1e-10, abs=1e-10), index
        n = frame.loc[index, "n_atoms"]
        assert (got[:n] != 0).all() and (got[n:] == 0).all()  # padded with zeros to 29
        assert (np.diff(np.abs(got)) <= 0).all()
        assert frame.loc[index, "nuclear_repulsion"] == pytest.approx(repulsion, rel=1e-12)
        assert frame.loc[index, "radius_of_gyration"] == pytest.approx(gyration, rel=1e-12)


def test_geometry_descriptors_ignore_atom_order_and_refuse_large_molecules():
    codes = np.array([3, 0, 0])  # O, H, H
    positions = np.array([[-0.0343604951, 0.9775395708, 0.0076015923], [0.0647664923, 0.0205721989, 0.0015346341], [0.8717903737, 1.3007924048, 0.0006931336]])
    one = qm9.geometry_descriptors(codes, positions, np.array([0]), np.array([3]))
    other = qm9.geometry_descriptors(codes[[1, 2, 0]], positions[[1, 2, 0]], np.array([0]), np.array([3]))
    for column in qm9.GEOMETRY_COLUMNS:
        assert one[column] == pytest.approx(other[column], abs=1e-12), column
    assert [one[c][0] for c in qm9.EIGENVALUE_COLUMNS[:3]] == pytest.approx(WATER_EIGENVALUES, abs=1e-7)
    big = 30
    with pytest.raises(ValueError, match="29"):
        qm9.geometry_descriptors(np.zeros(big, int), np.arange(big * 3.0).reshape(big, 3), np.array([0]), np.array([big]))


def test_cache_is_written_and_reused(fake_qm9, monkeypatch, tmp_path):
    first = qm9.load()["train"]
    path = qm9.cache_path()
    assert path == tmp_path / "cache" / "built" / "qm9-1.0.3-b1.parquet"
    assert path.is_file() and fake_qm9 == ["qm9"]
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []  # no temporary file left

    reads = []
    read_csv = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: reads.append(a) or read_csv(*a, **k))
    second = qm9.load()["train"]
    assert fake_qm9 == ["qm9"] and reads == []  # neither fetched nor a CSV read
    pd.testing.assert_frame_equal(first, second)

    path.unlink()  # gone: built again
    qm9.load()
    assert fake_qm9 == ["qm9", "qm9"] and sorted(a[0].name for a in reads if isinstance(a[0], Path)) == sorted(PARTS)


def test_missing_target_is_refused(tmp_path):
    rows = dict(ROWS)
    rows[2] = rows[2].replace(",6.316", ",")  # NH3's heat capacity, the last value
    _write_package(tmp_path)
    (tmp_path / "qm9_part1.csv").write_text("\n".join([HEADER, rows[1], rows[2], rows[3]]) + "\n")
    with pytest.raises(ValueError, match="Heatcapacity_Cv_cal_mol_K"):
        qm9.build(tmp_path)
