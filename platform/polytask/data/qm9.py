"""QM9, read from the pinned qm9pack 1.0.3 wheel (R. Ramakrishnan's own packaging of the data).

130,831 small organic molecules (at most 9 heavy atoms among C, N, O, F, plus H; 3 to 29 atoms)
with their B3LYP/6-31G(2df,p) geometries and properties (Ramakrishnan, Dral, Rupp, von
Lilienfeld, "Quantum chemistry structures and properties of 134 kilo molecules", Scientific
Data 2014). The GDB indices run from 1 to 133,885; the 3,054 molecules whose relaxed geometry
failed the paper's consistency check are not in the package. QM9 has no official split: load()
returns one ``"train"`` frame, and polytask holds validation and test out of it with the spec's
seeded split.

Reading: the package keeps the molecules in ``qm9_part1.csv`` .. ``qm9_part3.csv`` (one row per
molecule, in GDB index order; lists such as the coordinates are written as strings like
``"[[x,y,z],...]"``) and the polarizability tensors in ``qm9_polarizability.csv``, which
``qm9pack.get_data`` joins on ``XYZ_file``; the tensors are DFT outputs (their trace / 3 is
``alpha``), so they are not read here.

Targets: the 12 regression targets of the usual benchmark (MoleculeNet; the multi-task set of
e.g. Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022), see
``TARGET_COLUMNS``. Values keep the units of the source (``UNITS``: energies in hartree, not
converted to eV); none is missing.

Features (``DESCRIPTOR_COLUMNS``) come only from the molecule's structure: what atoms it has,
its SMILES graph, and its DFT-optimised geometry (which standard QM9 models take as input).
Columns of the source that are DFT *outputs* are never features: Mulliken charges, harmonic
frequencies (their sum is the ZPVE: ``zpve = h/2 * sum(frequencies)``) and rotational
constants, like the targets themselves. The descriptors:

* ``n_atoms``, ``n_heavy_atoms`` (non-hydrogen), ``n_h``, ``n_c``, ``n_n``, ``n_o``, ``n_f``:
  atom counts, from the geometry's element list;
* from the SMILES, read by :func:`smiles_counts` (a small reader, no RDKit), bonds between the
  atoms written in it (bonds to hydrogens are implicit and not counted):
  ``n_single_bonds``, ``n_double_bonds``, ``n_triple_bonds``, ``n_aromatic_bonds`` (always 0
  here: the package's SMILES are Kekulé structures, with no lower-case atoms),
  ``n_ring_closures`` (ring-closure bonds, the number of independent rings), and
  ``n_charged_atoms`` (atoms of a zwitterion written with a charge, e.g. ``[NH3+]``,
  ``[O-]``);
* from the geometry (Å in the source): ``radius_of_gyration`` (mass-weighted, Å, standard
  atomic weights), ``nuclear_repulsion`` (sum over atom pairs of Z_i Z_j / |R_i - R_j| with R
  in bohr: hartree), and ``cm_eig_01`` .. ``cm_eig_29``, the eigenvalues of the Coulomb matrix
  (Rupp, Tkatchenko, Müller, von Lilienfeld, PRL 108, 058301, 2012): C_ii = 0.5 Z_i^2.4,
  C_ij = Z_i Z_j / |R_i - R_j| with R in **bohr** (atomic units, as in the paper: C is then
  in hartree), in order of decreasing absolute value, padded with zeros to 29 (the largest
  molecule). The eigenvalues do not depend on the order of the atoms.

Quirks of the data: 443 molecules are zwitterions written with two charged atoms (``[NH3+]`` ..
``[O-]``); they hold the extremes of ``mu`` (up to 29.6 D), ``alpha`` and the smallest ``gap``.
139 nitro groups are written with a pentavalent N (``O=N(=O)C``). The SMILES have no
stereochemistry and no aromatic atoms. 151 rows write a coordinate in E notation
(``-1.1025E-6``). The SMILES agree with the geometry's element list (heavy atoms, and the
hydrogens their valences imply) in every row.

The derived frame is cached as a parquet file under ``cache_root()/built`` (``cache_path()``),
written atomically, so only the first load parses the CSV files (about 230 MB; 8 to 12 s on
one core, against 0.1 to 0.2 s for a cached load).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from polytask.ops.artifacts import ARTIFACTS, cache_root, fetch

ARTIFACT = "qm9"
FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
# Bump when what load() derives changes: the cache file's name carries it.
BUILD = 1

# target column -> the source's column
SOURCE_TARGETS = {
    "mu": "Dipole_debye",  # dipole moment
    "alpha": "Polarizability_bohr3",  # isotropic polarizability
    "homo": "HOMO_au",  # energy of the highest occupied molecular orbital
    "lumo": "LUMO_au",  # energy of the lowest unoccupied molecular orbital
    "gap": "HOMO_LUMO_gap_au",  # lumo - homo
    "r2": "R2_bohr2",  # electronic spatial extent <R^2>
    "zpve": "ZPVE_au",  # zero-point vibrational energy
    "u0": "InternalEnergy_0K_au",  # internal energy at 0 K
    "u298": "InternalEnergy_298K_au",  # internal energy at 298.15 K
    "h298": "Enthalphy_298K_au",  # enthalpy at 298.15 K (the source spells it "Enthalphy")
    "g298": "GibbsFreeEnergy_298K_au",  # free energy at 298.15 K
    "cv": "Heatcapacity_Cv_cal_mol_K",  # heat capacity at 298.15 K
}
TARGET_COLUMNS = tuple(SOURCE_TARGETS)
UNITS = {
    "mu": "Debye",
    "alpha": "bohr^3",
    "homo": "hartree",
    "lumo": "hartree",
    "gap": "hartree",
    "r2": "bohr^2",
    "zpve": "hartree",
    "u0": "hartree",
    "u298": "hartree",
    "h298": "hartree",
    "g298": "hartree",
    "cv": "cal/(mol K)",
}

ELEMENTS = ("H", "C", "N", "O", "F")  # the source's Stoichiometry lists counts in this order
ATOMIC_NUMBERS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
ATOMIC_MASSES = {"H": 1.008, "C": 12.011, "N": 14.007, "O": 15.999, "F": 18.998}  # IUPAC standard atomic weights
BOHR_PER_ANGSTROM = 1 / 0.529177210903  # CODATA 2018 Bohr radius in Å
MAX_ATOMS = 29  # the largest QM9 molecule

COUNT_COLUMNS = ("n_atoms", "n_heavy_atoms", *(f"n_{e.lower()}" for e in ELEMENTS))
SMILES_COLUMNS = ("n_single_bonds", "n_double_bonds", "n_triple_bonds", "n_aromatic_bonds", "n_ring_closures", "n_charged_atoms")
EIGENVALUE_COLUMNS = tuple(f"cm_eig_{i:02d}" for i in range(1, MAX_ATOMS + 1))
GEOMETRY_COLUMNS = ("radius_of_gyration", "nuclear_repulsion", *EIGENVALUE_COLUMNS)
DESCRIPTOR_COLUMNS = (*COUNT_COLUMNS, *SMILES_COLUMNS, *GEOMETRY_COLUMNS)
ID_COLUMN = "id"  # the GDB index: molecule i is dsgdb9nsd_<i>.xyz of the paper
SMILES_COLUMN = "smiles"
COLUMNS = (ID_COLUMN, SMILES_COLUMN, *DESCRIPTOR_COLUMNS, *TARGET_COLUMNS)


def load() -> dict[str, pd.DataFrame]:
    """``{"train": frame}`` with the columns of ``COLUMNS``, one row per molecule, in GDB index
    order. Built from the artifact on first use, then read from the cache."""
    path = cache_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several trials may start on one node at once: one builds, the others wait and reuse.
        with FileLock(str(path.parent / f".{path.name}.lock")):
            if not path.exists():
                _write_atomically(build(fetch(ARTIFACT)), path)
    return {"train": pd.read_parquet(path)}


def cache_path() -> Path:
    """Where load() keeps the derived frame: named by the artifact's version and ``BUILD``."""
    return cache_root() / "built" / f"qm9-{ARTIFACTS[ARTIFACT].version}-b{BUILD}.parquet"


def build(folder: Path) -> pd.DataFrame:
    """The frame of ``COLUMNS`` from the package's CSV files in ``folder``."""
    source = pd.concat([pd.read_csv(Path(folder) / name) for name in FILES], ignore_index=True)
    missing = source[list(SOURCE_TARGETS.values())].isna().sum()
    if missing.any():
        raise ValueError(f"QM9: missing target values in {Path(folder)}: {missing[missing > 0].to_dict()}")
    frame = pd.DataFrame({ID_COLUMN: source["Index"].astype(np.int64), SMILES_COLUMN: source["SMILES"].astype(str)})
    codes = _element_codes(source["Elements"].tolist())
    n_atoms = source["N_atoms"].to_numpy(np.int64)
    if len(codes) != n_atoms.sum():
        raise ValueError(f"QM9: the element lists name {len(codes)} atoms, N_atoms sums to {n_atoms.sum()}")
    starts = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    molecule = np.repeat(np.arange(len(source)), n_atoms)
    counts = np.bincount(molecule * len(ELEMENTS) + codes, minlength=len(source) * len(ELEMENTS)).reshape(-1, len(ELEMENTS))
    frame["n_atoms"] = n_atoms
    frame["n_heavy_atoms"] = n_atoms - counts[:, 0]
    for i, element in enumerate(ELEMENTS):
        frame[f"n_{element.lower()}"] = counts[:, i].astype(np.int64)
    smiles = np.array([list(smiles_counts(s).values()) for s in frame[SMILES_COLUMN].tolist()], dtype=np.int64).reshape(-1, len(SMILES_COLUMNS))
    for i, column in enumerate(SMILES_COLUMNS):
        frame[column] = smiles[:, i]
    coordinates = _coordinates(source["XYZ_Ang"].tolist())
    if coordinates.shape != (len(codes), 3):
        raise ValueError(f"QM9: {coordinates.size} coordinates for {len(codes)} atoms")
    geometry = geometry_descriptors(codes, coordinates, starts, n_atoms)
    for column in GEOMETRY_COLUMNS:
        frame[column] = geometry[column]
    for column, source_column in SOURCE_TARGETS.items():
        frame[column] = source[source_column].to_numpy(np.float64)
    return frame


def _element_codes(elements: list[str]) -> np.ndarray:
    """Every atom's element as an index into ``ELEMENTS``, molecule after molecule, from the
    ``"['C','H',...]"`` strings (one-letter symbols only, as QM9 has)."""
    raw = np.frombuffer("".join(elements).encode("ascii"), np.uint8)
    table = np.full(256, -2, np.int64)  # -2: unexpected, -1: a separator
    table[np.frombuffer(b"[],' ", np.uint8)] = -1
    table[np.frombuffer("".join(ELEMENTS).encode(), np.uint8)] = np.arange(len(ELEMENTS))
    codes = table[raw]
    if (codes == -2).any():
        raise ValueError(f"QM9: element lists hold symbols other than {', '.join(ELEMENTS)}")
    return codes[codes >= 0]


def _coordinates(xyz: list[str]) -> np.ndarray:
    """[atoms, 3] coordinates (Å) from the ``"[[x,y,z],...]"`` strings: one number a line for
    the C parser (exact, several times faster than float() on each)."""
    text = ",".join(xyz).encode("ascii").translate(None, b"[] ").replace(b",", b"\n")
    values = pd.read_csv(io.BytesIO(text), header=None, names=["v"], dtype={"v": np.float64})["v"].to_numpy()
    return values.reshape(-1, 3)


def geometry_descriptors(codes: np.ndarray, coordinates: np.ndarray, starts: np.ndarray, n_atoms: np.ndarray) -> dict[str, np.ndarray]:
    """``radius_of_gyration``, ``nuclear_repulsion`` and the Coulomb-matrix eigenvalues
    (``cm_eig_01`` ..) of molecules given as flat per-atom arrays: molecule m's atoms are rows
    ``starts[m]`` .. ``starts[m] + n_atoms[m] - 1`` of ``codes`` (indices into ``ELEMENTS``)
    and ``coordinates`` (Å). Molecules of one size are computed together."""
    charge = np.array([ATOMIC_NUMBERS[e] for e in ELEMENTS], np.float64)[codes]
    mass = np.array([ATOMIC_MASSES[e] for e in ELEMENTS], np.float64)[codes]
    count = len(starts)
    gyration, repulsion = np.zeros(count), np.zeros(count)
    eigenvalues = np.zeros((count, MAX_ATOMS))
    if n_atoms.size and n_atoms.max() > MAX_ATOMS:
        raise ValueError(f"QM9: a molecule of {n_atoms.max()} atoms; the Coulomb-matrix eigenvalues are padded to {MAX_ATOMS}")
    for size in np.unique(n_atoms):
        rows = np.flatnonzero(n_atoms == size)
        atoms = starts[rows, None] + np.arange(size)  # [k, n]
        r, z, m = coordinates[atoms], charge[atoms], mass[atoms]  # Å [k, n, 3], [k, n], [k, n]
        centre = np.einsum("kn,kni->ki", m, r) / m.sum(1, keepdims=True)
        offset = r - centre[:, None]
        gyration[rows] = np.sqrt(np.einsum("kn,kni,kni->k", m, offset, offset) / m.sum(1))
        difference = r[:, :, None] - r[:, None]  # [k, n, n, 3]
        distance = np.sqrt(np.einsum("knmi,knmi->knm", difference, difference)) * BOHR_PER_ANGSTROM
        diagonal = np.arange(size)
        distance[:, diagonal, diagonal] = np.inf
        coulomb = z[:, :, None] * z[:, None] / distance  # [k, n, n], 0 on the diagonal
        repulsion[rows] = coulomb.sum((1, 2)) / 2
        coulomb[:, diagonal, diagonal] = 0.5 * z**2.4
        values = np.linalg.eigvalsh(coulomb)
        order = np.argsort(-np.abs(values), axis=1, kind="stable")
        eigenvalues[rows, :size] = np.take_along_axis(values, order, axis=1)
    out = {"radius_of_gyration": gyration, "nuclear_repulsion": repulsion}
    out.update({column: eigenvalues[:, i] for i, column in enumerate(EIGENVALUE_COLUMNS)})
    return out


# --------------------------------------------------------------------------- SMILES

# Atoms: a bracket atom, or one of the organic subset (aromatic in lower case); ring-closure
# digits (%nn for two digits); bond symbols; branches; "." between disconnected parts.
_TOKEN = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOSPFI]|[bcnosp]|\*|%\d\d|\d|[-=#$:/\\.()]")
_BRACKET = re.compile(r"\[(\d*)([A-Za-z][a-z]?|\*)(.*)\]")  # isotope, element, the rest
_BOND_KEYS = {"-": "n_single_bonds", "/": "n_single_bonds", "\\": "n_single_bonds", "=": "n_double_bonds", "#": "n_triple_bonds", ":": "n_aromatic_bonds"}
_AROMATIC_BRACKET = {"b", "c", "n", "o", "p", "s", "se", "as", "te"}


def smiles_counts(smiles: str) -> dict[str, int]:
    """The ``SMILES_COLUMNS`` counts of one SMILES string: bonds between the atoms written in
    it by type (a bond with no symbol is aromatic between two aromatic atoms, single otherwise;
    ``/`` and ``\\`` are single), ring-closure bonds (also counted by type), and atoms with a
    charge. Raises ValueError for what it cannot read (quadruple bonds, unclosed rings, ...)."""
    tokens = _TOKEN.findall(smiles)
    if "".join(tokens) != smiles:
        raise ValueError(f"SMILES {smiles!r}: cannot read it (unexpected characters)")
    counts = dict.fromkeys(SMILES_COLUMNS, 0)
    previous: bool | None = None  # the aromaticity of the atom the next bond starts from
    branches: list[bool | None] = []
    bond: str | None = None
    rings: dict[str, tuple[bool, str | None]] = {}

    def add(symbol: str | None, a: bool, b: bool) -> None:
        if symbol is None:
            key = "n_aromatic_bonds" if a and b else "n_single_bonds"
        elif symbol in _BOND_KEYS:
            key = _BOND_KEYS[symbol]
        else:
            raise ValueError(f"SMILES {smiles!r}: bond {symbol!r} is not supported")
        counts[key] += 1

    for token in tokens:
        if token[0] == "[" or token[0].isalpha() or token == "*":
            if token[0] == "[":
                parsed = _BRACKET.fullmatch(token)
                if parsed is None:
                    raise ValueError(f"SMILES {smiles!r}: cannot read atom {token}")
                aromatic = parsed.group(2) in _AROMATIC_BRACKET
                counts["n_charged_atoms"] += bool(re.search(r"[+-]", parsed.group(3)) and not re.search(r"[+-]0$", parsed.group(3)))
            else:
                aromatic = token.islower()
            if previous is not None:
                add(bond, previous, aromatic)
            elif bond is not None:
                raise ValueError(f"SMILES {smiles!r}: bond {bond!r} before any atom")
            previous, bond = aromatic, None
        elif token[0].isdigit() or token[0] == "%":
            if previous is None:
                raise ValueError(f"SMILES {smiles!r}: ring closure {token} before any atom")
            if token in rings:
                opened, opening_bond = rings.pop(token)
                if bond is not None and opening_bond is not None and bond != opening_bond:
                    raise ValueError(f"SMILES {smiles!r}: ring closure {token} has two bond symbols")
                add(bond or opening_bond, opened, previous)
                counts["n_ring_closures"] += 1
            else:
                rings[token] = (previous, bond)
            bond = None
        elif token == "(":
            branches.append(previous)
        elif token == ")":
            if not branches:
                raise ValueError(f"SMILES {smiles!r}: unbalanced ')'")
            previous = branches.pop()
        elif token == ".":
            previous = None
        else:
            if bond is not None:
                raise ValueError(f"SMILES {smiles!r}: two bond symbols in a row")
            bond = token
    if rings or branches or bond is not None:
        raise ValueError(f"SMILES {smiles!r}: unclosed ring, branch or dangling bond")
    return counts


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to a temporary file next to ``path``, then rename it: readers see the
    whole file or none."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        frame.to_parquet(temporary, index=False)
        os.chmod(temporary, 0o644)  # mkstemp made it private
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
