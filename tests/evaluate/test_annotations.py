"""Frame-level ground truth: parsers on the real UCF-Crime / UCSD files, and malformed input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtsm.evaluate.annotations import (
    FrameAnnotations,
    clip_to_frame_counts,
    frame_labels,
    load_annotations,
    match_videos,
    parse_csv,
    parse_ucf_crime,
    parse_ucsd_m,
)
from memtsm.extract.sources import read_frame_counts, read_labels_csv, video_key

OVERLONG = {"Arson011_x264", "Arson016_x264", "Explosion033_x264", "Fighting003_x264",
            "Shooting015_x264"}


@pytest.fixture(scope="module")
def meta(shared_data: Path) -> Path:
    return shared_data / "ucf_crime" / "meta"


@pytest.fixture(scope="module")
def temporal(meta: Path) -> Path:
    return meta / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


@pytest.fixture(scope="module")
def test_counts(meta: Path) -> dict[str, int]:
    return read_frame_counts(meta / "Test_Annotation.txt")


def _total_anomalous(annotations: FrameAnnotations, counts: dict[str, int]) -> int:
    return sum(int(frame_labels(annotations, name, counts[video_key(name)]).sum())
               for name in annotations.videos)


# ------------------------------------------------------------------------- UCF-Crime official


def test_ucf_official_annotation_totals(temporal: Path, test_counts: dict[str, int]) -> None:
    assert len(test_counts) == 290
    assert sum(test_counts.values()) == 1_111_808
    issue = parse_ucf_crime(temporal, test_counts)
    assert len(issue) == 290
    assert sum(issue.num_frames.values()) == 1_111_808
    # The issue's convention (frame k = k-th decoded frame counting from 1, start..end
    # inclusive; also the official MATLAB evaluation GT(s:e)=1): one more frame per interval.
    assert issue.anomalous_frame_count() == _total_anomalous(issue, test_counts) == 84_338
    n_intervals = sum(len(spans) for spans in issue.intervals.values())
    assert n_intervals == 156
    # The quoted 84,182 (7.57%) is the 0-based half-open reading gt[s:e] = 1.
    python = parse_ucf_crime(temporal, test_counts, convention="0-based-half-open")
    assert _total_anomalous(python, test_counts) == 84_182 == 84_338 - n_intervals
    assert round(100 * 84_182 / 1_111_808, 2) == 7.57
    anomalous_videos = [n for n in issue.videos if issue.intervals[n]]
    assert len(anomalous_videos) == 140
    assert all(issue.classes[n] == "Normal" for n in issue.videos if not issue.intervals[n])


def test_ucf_overlong_ends_are_clipped(temporal: Path, test_counts: dict[str, int]) -> None:
    raw = parse_ucf_crime(temporal)
    assert raw.num_frames == {}
    overlong = {video_key(name) for name, spans in raw.intervals.items()
                if any(end > test_counts[video_key(name)] for _, end in spans)}
    assert overlong == OVERLONG
    clipped = parse_ucf_crime(temporal, test_counts)
    for name in clipped.videos:
        count = test_counts[video_key(name)]
        assert all(end <= count for _, end in clipped.intervals[name])
        if video_key(name) in OVERLONG:
            assert max(end for _, end in clipped.intervals[name]) == count
    # clipping later gives the same result as clipping while parsing
    assert clip_to_frame_counts(raw, test_counts).intervals == clipped.intervals
    # frame_labels clips unclipped intervals by itself
    for name in OVERLONG:
        count = test_counts[name]
        assert np.array_equal(frame_labels(raw, name, count), frame_labels(clipped, name, count))


def test_ucf_frame_numbers_are_one_based_inclusive(temporal: Path) -> None:
    annotations = parse_ucf_crime(temporal)
    name = annotations.find("Abuse/Abuse028_x264")
    assert name == "Abuse028_x264.mp4"
    assert annotations.intervals[name] == ((164, 240),)  # "165 240"
    labels = frame_labels(annotations, "Abuse/Abuse028_x264", 300)
    assert labels.dtype == np.int8 and labels.shape == (300,)
    assert labels[163] == 0 and labels[164] == 1 and labels[239] == 1 and labels[240] == 0
    assert labels.sum() == 240 - 165 + 1
    # two intervals in one video
    two = [n for n in annotations.videos if len(annotations.intervals[n]) == 2]
    assert len(two) == 16
    # an unannotated video is all normal
    assert frame_labels(annotations, "Somewhere/Unknown_x264", 50).sum() == 0


def test_test_annotation_file_carries_counts_and_same_intervals(meta: Path, temporal: Path,
                                                                test_counts: dict[str, int]
                                                                ) -> None:
    with_counts = load_annotations(meta / "Test_Annotation.txt")
    official = parse_ucf_crime(temporal, test_counts)
    assert {video_key(n): c for n, c in with_counts.num_frames.items()} == test_counts
    assert ({video_key(n): s for n, s in with_counts.intervals.items()}
            == {video_key(n): s for n, s in official.intervals.items()})
    assert with_counts.classes["Arson/Arson022_x264.mp4"] == "Arson"


def test_read_frame_counts_train(meta: Path) -> None:
    counts = read_frame_counts(meta / "Train_Annotation.txt")
    assert len(counts) == 1610
    assert counts["Vandalism048_x264"] == 7183
    assert counts["Normal_Videos826_x264"] == 1657


def test_match_videos(temporal: Path) -> None:
    annotations = parse_ucf_crime(temporal)
    ids = ["Abuse/Abuse028_x264", "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264",
           "Train/Other001_x264", "Arrest001_x264.mp4"]
    mapping, missing = match_videos(annotations, ids)
    assert mapping == {"Abuse/Abuse028_x264": "Abuse028_x264.mp4",
                       "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264":
                           "Normal_Videos_003_x264.mp4",
                       "Arrest001_x264.mp4": "Arrest001_x264.mp4"}
    assert len(missing) == 290 - 3 and "Abuse030_x264.mp4" in missing
    assert "Abuse028_x264.mp4" not in missing


def test_match_videos_ambiguous_last_component(shared_data: Path) -> None:
    ucsd = parse_ucsd_m(shared_data / "ucsd_ped2" / "gt" / "UCSDped2.m")
    with pytest.raises(ValueError, match="several store ids"):
        match_videos(ucsd, ["training/01", "testing/01"])
    full = parse_ucsd_m(shared_data / "ucsd_ped2" / "gt" / "UCSDped2.m", "testing/{:02d}")
    mapping, missing = match_videos(full, ["training/01", "testing/01", "testing/02"])
    assert mapping == {"testing/01": "testing/01", "testing/02": "testing/02"}
    assert missing == [f"testing/{i:02d}" for i in range(3, 13)]


def test_video_key() -> None:
    assert video_key("Assault/Assault018_x264") == "Assault018_x264"
    assert video_key("Assault018_x264.mp4") == "Assault018_x264"
    assert video_key("cam.01") == "cam.01"  # not a video extension
    assert video_key("a\\b\\Clip.AVI") == "Clip"


# ----------------------------------------------------------------------------------- UCSD


def test_ucsd_ped2_ground_truth(shared_data: Path) -> None:
    path = shared_data / "ucsd_ped2" / "gt" / "UCSDped2.m"
    annotations = load_annotations(path)
    assert annotations.videos == [f"{i:02d}" for i in range(1, 13)]
    labels = frame_labels(annotations, "01", 180)
    assert labels[:60].sum() == 0 and labels[60:180].all()  # 1-based frames 61..180
    expected = {"02": (95, 180, 180), "03": (1, 146, 150), "04": (31, 180, 180),
                "05": (1, 129, 150), "06": (1, 159, 180)}
    for name, (first, last, count) in expected.items():
        labels = frame_labels(annotations, name, count)
        assert np.flatnonzero(labels).tolist() == list(range(first - 1, last))
    # the folder names of the shared test videos match the default scheme
    assert {p.name for p in (shared_data / "ucsd_ped2" / "testing").iterdir()} <= set(
        annotations.videos)
    other = parse_ucsd_m(path, name_format="Test{:03d}")
    assert other.videos[0] == "Test001" and other.intervals["Test001"] == ((60, 180),)


def test_ucsd_several_ranges(tmp_path: Path) -> None:
    path = tmp_path / "gt.m"
    path.write_text("% ground truth\nTestVideoFile = {};\n"
                    "TestVideoFile{end+1}.gt_frame = [5:90, 140:200];\n"
                    "TestVideoFile{2}.gt_frame = [7 10 : 12];\n"
                    "TestVideoFile{end+1}.gt_frame = [];\n")
    annotations = parse_ucsd_m(path, frame_counts={"01": 150})
    assert annotations.intervals == {"01": ((4, 90), (139, 150)), "02": ((6, 7), (9, 12)),
                                     "03": ()}
    path.write_text("TestVideoFile{end+1}.gt_frame = [5:90];\nTestVideoFile{3}.gt_frame = [1];\n")
    with pytest.raises(ValueError, match=rf"^{path}:2: .*out of order"):
        parse_ucsd_m(path)


# ------------------------------------------------------------------------------------ CSV


def test_csv_annotations(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("video,start_frame,end_frame,class\n"
                    "Assault/Assault018_x264.mp4,100,150,Assault\n"
                    "# a comment\n"
                    "Assault/Assault018_x264.mp4,300,400,Assault\n"
                    "Normal_Videos_010_x264,-1,-1\n"
                    "\n")
    annotations = load_annotations(path, frame_counts={"Assault018_x264": 361})
    assert annotations.intervals == {"Assault/Assault018_x264.mp4": ((99, 150), (299, 361)),
                                     "Normal_Videos_010_x264": ()}
    assert annotations.classes == {"Assault/Assault018_x264.mp4": "Assault"}
    labels = frame_labels(annotations, "Assault018_x264", 361)
    assert labels.sum() == 51 + 62 and labels[98] == 0 and labels[99] == 1
    mapping, missing = match_videos(annotations, ["Assault018_x264"])
    assert mapping == {"Assault018_x264": "Assault/Assault018_x264.mp4"}
    assert missing == ["Normal_Videos_010_x264"]
    # without header, auto-detected by content
    plain = tmp_path / "gt.txt"
    plain.write_text("v1,1,10\nv2,3,3\n")
    assert load_annotations(plain).intervals == {"v1": ((0, 10),), "v2": ((2, 3),)}


@pytest.mark.parametrize(("row", "message"), [
    ("v1,10,5", "invalid frame range"),
    ("v1,0,5", "invalid frame range"),
    ("v1,1.5,5", "must be an integer"),
    ("v1,5", "expected"),
    (",1,5", "empty video name"),
    ("v1,-1,5", "invalid frame range"),
    ("v1,1,5,Assault\nv1,6,7,Fighting", "differs"),
    ('"v1",1,5', "quotes"),
])
def test_csv_malformed(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("video,start_frame,end_frame\nv0,1,2\n" + row + "\n")
    line = 2 + len(row.split("\n"))
    with pytest.raises(ValueError, match=rf"^{path}:{line}: .*{message}"):
        parse_csv(path)


def test_csv_interval_after_video_end(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("v1,1,5\nv1,50,60\n")
    with pytest.raises(ValueError, match=rf"^{path}:2: .*starts after"):
        parse_csv(path, frame_counts={"v1": 40})


def test_ucf_malformed_examples(tmp_path: Path) -> None:
    path = tmp_path / "ann.txt"
    good = "Abuse028_x264.mp4  Abuse  165  240  -1  -1  \n"
    for bad, message in [("X001.mp4  Abuse  240  165  -1  -1", "invalid frame range"),
                         ("X001.mp4  Abuse  165  240  -1", "6 fields"),
                         ("X001.mp4  Abuse  165  240  -1  7", "invalid frame range"),
                         ("X001.mp4  Abuse  16a  240  -1  -1", "must be an integer"),
                         ("Abuse028_x264.mp4  Abuse  1  2  -1  -1", "listed twice")]:
        path.write_text(good + bad + "\n")
        with pytest.raises(ValueError, match=rf"^{path}:2: .*{message}"):
            parse_ucf_crime(path)
    path.write_text(good)
    with pytest.raises(ValueError, match=rf"^{path}:1: .*starts after"):
        parse_ucf_crime(path, frame_counts={"Abuse028_x264": 100})


# ------------------------------------------------------------------- malformed-line properties

_LINE_TEXT = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                     max_size=60)
_PROPERTY = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])

UCF_BASE = ["Abuse028_x264.mp4  Abuse  165  240  -1  -1  ",
            "Arrest001_x264.mp4  Arrest  1185  1485  -1  -1  ",
            "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1  ",
            "Arson011_x264.mp4  Arson  150  420  680  1267  "]
UCSD_BASE = ["TestVideoFile = {};", "TestVideoFile{end+1}.gt_frame = [61:180];",
             "TestVideoFile{end+1}.gt_frame = [95:180];",
             "TestVideoFile{end+1}.gt_frame = [1:146];"]
CSV_BASE = ["video,start_frame,end_frame", "Abuse028_x264.mp4,165,240",
            "Arrest001_x264.mp4,1185,1485", "Arson011_x264.mp4,150,420"]
COUNTS_BASE = ["Arson/Arson022_x264.mp4 8640 Arson 3500 4000 -1 -1",
               "RoadAccidents/RoadAccidents021_x264.mp4 155 RoadAccidents 30 90 -1 -1",
               "Explosion/Explosion008_x264.mp4 1748 Explosion 1005 1245 -1 -1"]
LABELS_BASE = ["video,label,class", "Assault/Assault018_x264.mp4,1,Assault",
               "Normal_Videos_010_x264,0", "Explosion001_x264,1,Explosion"]


def _with_line(base: list[str], index: int, line: str, suffix: str):
    """Write base with ``line`` inserted at ``index``; return (dir, path, 1-based line number)."""
    lines = list(base)
    index = min(index, len(lines))
    lines.insert(index, line)
    folder = tempfile.TemporaryDirectory()
    path = Path(folder.name) / f"ann{suffix}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder, path, index + 1


def _check_garbage(parse, base: list[str], index: int, line: str, suffix: str) -> None:
    """A garbage line either fails naming its own line, or leaves the other entries intact."""
    reference_folder, reference_path, _ = _with_line(base, len(base), "", suffix)
    with reference_folder:
        reference = parse(reference_path)
    folder, path, line_no = _with_line(base, index, line, suffix)
    with folder:
        try:
            result = parse(path)
        except ValueError as exc:
            assert str(exc).startswith(f"{path}:{line_no}: "), str(exc)
            return
    for key, value in reference.items():
        assert result[key] == value


def _annotation_items(annotations: FrameAnnotations) -> dict:
    return {name: (spans, annotations.classes.get(name), annotations.num_frames.get(name))
            for name, spans in annotations.intervals.items()}


@_PROPERTY
@given(index=st.integers(0, 4), line=_LINE_TEXT)
def test_ucf_garbage_lines(index: int, line: str) -> None:
    _check_garbage(lambda p: _annotation_items(parse_ucf_crime(p)), UCF_BASE, index, line, ".txt")


@_PROPERTY
@given(index=st.integers(0, 4), line=_LINE_TEXT)
def test_ucsd_garbage_lines(index: int, line: str) -> None:
    # an inserted valid video shifts the names of the following ones, so compare only the
    # videos before the inserted line
    folder, path, line_no = _with_line(UCSD_BASE, index, line, ".m")
    with folder:
        try:
            result = parse_ucsd_m(path)
        except ValueError as exc:
            assert str(exc).startswith(f"{path}:{line_no}: "), str(exc)
            return
    expected = [((60, 180),), ((94, 180),), ((0, 146),)]
    before = [spans for spans in expected[:max(index - 1, 0)]]
    assert list(result.intervals.values())[:len(before)] == before
    assert len(result) in (3, 4)


@_PROPERTY
@given(index=st.integers(1, 4), line=_LINE_TEXT)
def test_csv_garbage_lines(index: int, line: str) -> None:
    _check_garbage(lambda p: _annotation_items(parse_csv(p)), CSV_BASE, index, line, ".csv")


@_PROPERTY
@given(index=st.integers(0, 3), line=_LINE_TEXT)
def test_frame_counts_garbage_lines(index: int, line: str) -> None:
    _check_garbage(read_frame_counts, COUNTS_BASE, index, line, ".txt")


def _structured_bad_ucf() -> st.SearchStrategy[str]:
    name = st.from_regex(r"[A-Za-z]{1,8}[0-9]{3}_x264\.mp4", fullmatch=True)
    number = st.integers(-5, 5000).map(str)
    wrong_count = st.lists(st.from_regex(r"[A-Za-z0-9\-]{1,6}", fullmatch=True),
                           min_size=1, max_size=10).filter(
        lambda t: len(t) not in (6, 7) and not t[0].startswith("#"))
    not_int = st.tuples(name, st.sampled_from(["1.5", "x", "1e3", "--1", "12a"]), number)
    reversed_range = st.tuples(name, st.integers(2, 5000)).map(
        lambda t: f"{t[0]}  Abuse  {t[1]}  {t[1] - 1}  -1  -1")
    return st.one_of(
        wrong_count.map("  ".join),
        not_int.map(lambda t: f"{t[0]}  Abuse  {t[2]}  {t[1]}  -1  -1"),
        reversed_range,
        name.map(lambda n: f"{n}  Abuse  0  10  -1  -1"),
        st.tuples(name, number).map(lambda t: f"{t[0]}  Abuse  -1  {t[1]}  -1  -1"),
    )


@_PROPERTY
@given(index=st.integers(0, 4), line=_structured_bad_ucf())
def test_ucf_malformed_lines_always_raise(index: int, line: str) -> None:
    folder, path, line_no = _with_line(UCF_BASE, index, line, ".txt")
    with folder, pytest.raises(ValueError) as info:
        parse_ucf_crime(path)
    assert str(info.value).startswith(f"{path}:{line_no}: ")


@_PROPERTY
@given(index=st.integers(1, 4), start=st.integers(-3, 20), end=st.integers(-3, 20),
       extra=st.sampled_from(["", ",Abuse", ",a,b"]))
def test_csv_rows_raise_or_mean_what_they_say(index: int, start: int, end: int,
                                              extra: str) -> None:
    folder, path, line_no = _with_line(CSV_BASE, index, f"Xyz001,{start},{end}{extra}", ".csv")
    valid = (start == end == -1 or 1 <= start <= end) and extra != ",a,b"
    with folder:
        if not valid:
            with pytest.raises(ValueError) as info:
                parse_csv(path)
            assert str(info.value).startswith(f"{path}:{line_no}: ")
            return
        annotations = parse_csv(path)
    spans = () if start == -1 else ((start - 1, end),)
    assert annotations.intervals["Xyz001"] == spans


@_PROPERTY
@given(index=st.integers(1, 4), line=_LINE_TEXT)
def test_labels_csv_garbage_lines(index: int, line: str) -> None:
    _check_garbage(read_labels_csv, LABELS_BASE, index, line, ".csv")


def test_labels_csv_empty_name_names_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("video,label\nA001,1\n.,1\n")
    with pytest.raises(ValueError, match=rf"^{path}:3: "):
        read_labels_csv(path)


def test_load_annotations_unknown_content(tmp_path: Path) -> None:
    path = tmp_path / "ann.txt"
    path.write_text("just some words\n")
    with pytest.raises(ValueError, match=rf"^{path}:1: cannot tell"):
        load_annotations(path)
    with pytest.raises(ValueError, match="unknown annotation format"):
        load_annotations(path, format="xml")  # type: ignore[arg-type]


def test_same_last_component_needs_full_ids(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("train/a,1,2\ntest/a,3,4\n")
    annotations = parse_csv(path)
    assert frame_labels(annotations, "test/a", 5).tolist() == [0, 0, 1, 1, 0]
    with pytest.raises(ValueError, match="several annotated videos"):
        frame_labels(annotations, "a", 5)
    mapping, missing = match_videos(annotations, ["train/a", "test/a"])
    assert mapping == {"train/a": "train/a", "test/a": "test/a"} and missing == []


def test_key_match_needs_compatible_folders(tmp_path: Path) -> None:
    """Regression: store id training/05 must not take the ground truth of testing/05."""
    path = tmp_path / "gt.csv"
    path.write_text("testing/05,1,10\nAssault018_x264.mp4,3,4\nAbuse/Abuse1.mp4,1,2\n")
    annotations = parse_csv(path)
    ids = ["training/05", "Assault/Assault018_x264", "UCF/Videos/Abuse/Abuse1", "Other/Abuse1"]
    mapping, missing = match_videos(annotations, ids)
    assert mapping == {"Assault/Assault018_x264": "Assault018_x264.mp4",
                       "UCF/Videos/Abuse/Abuse1": "Abuse/Abuse1.mp4"}
    assert missing == ["testing/05"]
    assert frame_labels(annotations, "training/05", 12).sum() == 0
