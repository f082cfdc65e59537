from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from colbert_retriever.cli import main

DOCS = [
    {"_id": "eiffel", "title": "paris", "text": "the eiffel tower is in paris, france.", "lang": "en"},
    {"_id": "plant", "title": "", "text": "a plant turns sun light into energy.", "lang": "en"},
    {"_id": "cat", "title": "", "text": "the cat sat on the mat.", "lang": "fr"},
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n")
    return path


@pytest.fixture
def built(tmp_path: Path, corpus: Path, checkpoints) -> Path:
    index = tmp_path / "idx"
    assert (
        main(["index", "--model", str(checkpoints["stanford"]), "--input", str(corpus), "--index", str(index), "-q"])
        == 0
    )
    return index


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_index_and_search_json(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert (
        main(
            ["search", "--index", str(built), "-k", "2", "--json", "-q", "paris the eiffel tower is in paris, france."]
        )
        == 0
    )
    lines = _json_lines(capsys.readouterr().out)
    assert [line["rank"] for line in lines] == [1, 2]
    assert lines[0]["doc_id"] == "eiffel"
    assert lines[0]["metadata"] == {"title": "paris", "lang": "en"}
    assert set(lines[0]) == {"doc_id", "score", "normalized_score", "rank", "text", "metadata"}
    assert main(["search", "--index", str(built), "-q", "the cat sat on the mat."]) == 0
    assert "cat" in capsys.readouterr().out.splitlines()[0]


def test_search_many_queries_and_filters(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        json.dumps({"_id": "q1", "text": "the cat sat on the mat."})
        + "\n"
        + json.dumps({"_id": "q2", "text": "a plant turns sun light into energy."})
        + "\n"
    )
    capsys.readouterr()
    assert main(["search", "--index", str(built), "--queries", str(queries), "-k", "1", "--json", "-q"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert [(line["qid"], line["doc_id"]) for line in lines] == [("q1", "cat"), ("q2", "plant")]
    assert main(["search", "--index", str(built), "-k", "5", "--json", "-q", "--filter", "lang=fr", "paris"]) == 0
    assert [line["doc_id"] for line in _json_lines(capsys.readouterr().out)] == ["cat"]


def test_filter_language_on_the_command_line(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    search = ["search", "--index", str(built), "-k", "5", "--json", "-q"]
    capsys.readouterr()
    assert main([*search, "--filter", '{"lang": {"$in": ["fr", "de"]}}', "paris"]) == 0
    assert [line["doc_id"] for line in _json_lines(capsys.readouterr().out)] == ["cat"]
    assert main([*search, "--filter", "lang=en", "--filter", '{"title": {"$ne": "paris"}}', "paris"]) == 0
    assert [line["doc_id"] for line in _json_lines(capsys.readouterr().out)] == ["plant"]
    for bad, named in [('{"lang": {"$like": "e"}}', "$like"), ('{"lang": ', "not a valid JSON object")]:
        assert main([*search, "--filter", bad, "paris"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ")
        assert named in err
        assert "\n" not in err


def test_add_delete_and_eval(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    more = tmp_path / "more"
    (more / "sub").mkdir(parents=True)
    (more / "sub" / "note.md").write_text("the red train and the blue car")
    assert main(["add", "--index", str(built), "--input", str(more), "-q"]) == 0
    assert main(["delete", "--index", str(built), "cat", "-q"]) == 0
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"_id": "1", "text": "the red train and the blue car"})
        + "\n"
        + json.dumps({"_id": "2", "text": "paris the eiffel tower is in paris, france."})
        + "\n"
    )
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\tsub/note.md\t1\n2\teiffel\t1\n")
    capsys.readouterr()
    assert main(["eval", "--index", str(built), "--queries", str(queries), "--qrels", str(qrels), "--json", "-q"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0, "queries": 2}


def test_errors_exit_1_with_one_line(
    built: Path, tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str], checkpoints
) -> None:
    cases = [
        ["search", "--index", str(tmp_path / "missing"), "q"],
        ["search", "--index", str(built), "-k", "0", "q"],
        ["delete", "--index", str(built), "not-there"],
        ["add", "--index", str(built), "--input", str(corpus)],  # ids already indexed
        ["index", "--model", str(tmp_path / "no-model"), "--input", str(corpus), "--index", str(tmp_path / "n")],
        ["index", "--model", str(checkpoints["stanford"]), "--input", str(corpus), "--index", str(built)],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main([*argv, "-q"]) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ")
        assert "\n" not in err
        assert "Traceback" not in err


def test_usage_error_and_module_entry_point() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search"])
    assert exc.value.code == 2
    out = subprocess.run([sys.executable, "-m", "colbert_retriever", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "index" in out.stdout


def test_info_counts_and_verifies(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["info", "--index", str(built), "--json", "--verify"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["documents"], info["index_type"], info["checksums"]) == (3, "auto", "verified")
    assert info["centroids"] == 0  # auto: exact while small
    assert info["tokens"] > 3 * 3
    assert info["model"]["format"] == "stanford"
    assert info["model"]["dim"] == 16
    on_disk = sum(p.stat().st_size for p in built.rglob("*") if p.is_file() and p.name != "write.lock")
    assert info["bytes"] == on_disk
    assert main(["delete", "--index", str(built), "cat", "-q"]) == 0
    assert main(["info", "--index", str(built)]) == 0
    out = capsys.readouterr().out
    assert "documents        2" in out
    assert "deleted          1" in out


def test_plaid_index_search_flags_compact_retrain(
    tmp_path: Path, corpus: Path, checkpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    index = str(tmp_path / "plaid")
    model = str(checkpoints["stanford"])
    argv = ["index", "--model", model, "--input", str(corpus), "--index", index, "--index-type", "plaid"]
    assert main([*argv, "--nbits", "4", "-q"]) == 0
    capsys.readouterr()
    query = "the cat sat on the mat."
    flags = ["--ncells", "1", "--ndocs", "1", "--centroid-score-threshold", "0.1"]
    assert main(["search", "--index", index, "-k", "3", *flags, "--json", "-q", query]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert [line["doc_id"] for line in lines][:1] == ["cat"]
    assert len(lines) == 3  # k is not capped by ndocs
    assert main(["delete", "--index", index, "eiffel", "-q"]) == 0
    assert main(["compact", "--index", index, "-q"]) == 0
    assert main(["retrain", "--index", index, "-q"]) == 0
    capsys.readouterr()
    assert main(["info", "--index", index, "--json", "--verify"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["index_type"], info["nbits"], info["documents"], info["deleted"]) == ("plaid", 4, 2, 0)
    assert info["centroids"] >= 1
    exact = str(tmp_path / "exact")
    assert (
        main(["index", "--model", model, "--input", str(corpus), "--index", exact, "--index-type", "exact", "-q"]) == 0
    )
    capsys.readouterr()
    assert main(["retrain", "--index", exact, "-q"]) == 1
    assert "no centroids" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_index_is_one_clear_line(built: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    (segment,) = (built / "segments").iterdir()
    file = segment / "embeddings.npy"
    data = bytearray(file.read_bytes())
    if damage == "truncate":
        data = data[:-10]
    else:
        data[-5] ^= 0x10
    file.write_bytes(bytes(data))
    capsys.readouterr()
    commands = [["info", "--index", str(built), "--verify"]]
    if damage == "truncate":  # sizes are checked on every open; checksums by --verify
        commands += [["info", "--index", str(built)], ["search", "--index", str(built), "q"]]
    for argv in commands:
        assert main([*argv, "-q"]) == 1
        err = capsys.readouterr().err.strip()
        assert "embeddings.npy" in err
        assert "\n" not in err
        assert "Traceback" not in err
