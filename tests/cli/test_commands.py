from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from colbert_retriever import Index
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
    assert set(lines[0]) == {
        *("doc_id", "score", "normalized_score", "rank", "text", "metadata"),
        *("passage", "start", "end", "passage_score", "late_score", "lexical_score"),
    }
    assert main(["search", "--index", str(built), "-q", "the cat sat on the mat."]) == 0
    assert "cat" in capsys.readouterr().out.splitlines()[0]


def test_search_explain_marks_the_matched_words(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    query = "the eiffel tower"
    assert main(["search", "--index", str(built), "-k", "1", "--json", "--explain", "-q", query]) == 0
    (line,) = _json_lines(capsys.readouterr().out)
    explanation = line["explanation"]
    assert len(explanation) == 8  # one per query token (query_maxlen 8, [MASK] expansion included)
    assert set(explanation[0]) == {"query_token", "doc_token", "start", "end", "similarity"}
    # the search may score in float16 (scoring_dtype "auto", decided by timing), the explanation in float32
    assert sum(e["similarity"] for e in explanation) == pytest.approx(line["passage_score"], rel=1e-4)
    for e in explanation:  # offsets into the passage's text
        assert 0 <= e["start"] <= e["end"] <= len(line["text"])
    assert main(["search", "--index", str(built), "-k", "1", "--explain", "-q", query]) == 0
    out = capsys.readouterr().out
    assert "**" in out  # marked words (no terminal: ** around them)
    assert line["doc_id"] in out.splitlines()[0]


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
    assert main([*search, "--filter-json", '{"lang": {"$in": ["fr", "de"]}}', "paris"]) == 0
    assert [line["doc_id"] for line in _json_lines(capsys.readouterr().out)] == ["cat"]
    assert main([*search, "--filter", "lang=en", "--filter-json", '{"title": {"$ne": "paris"}}', "paris"]) == 0
    assert [line["doc_id"] for line in _json_lines(capsys.readouterr().out)] == ["plant"]
    assert main([*search, "--filter", "lang=en", "--filter", "lang=fr", "paris"]) == 0  # a repeated field: any of
    assert sorted(line["doc_id"] for line in _json_lines(capsys.readouterr().out)) == ["cat", "eiffel", "plant"]
    for bad, named in [('{"lang": {"$like": "e"}}', "$like"), ('{"lang": ', "not valid JSON"), ("[1]", "object")]:
        assert main([*search, "--filter-json", bad, "paris"]) == 1
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
    assert (info["documents"], info["index_type"], info["auto"], info["checksums"]) == (3, "exact", True, "verified")
    assert info["centroids"] == 0  # auto: exact while small
    assert info["tokens"] > 3 * 3
    assert info["model"]["format"] == "stanford"
    assert info["model"]["dim"] == 16
    on_disk = sum(
        p.stat().st_size for p in built.rglob("*") if p.is_file() and p.name not in ("write.lock", "writer.pid")
    )
    assert info["bytes"] == on_disk
    assert main(["delete", "--index", str(built), "cat", "-q"]) == 0
    assert main(["info", "--index", str(built)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split(None, 1) for line in lines]
    assert ["documents", "2"] in rows
    assert ["deleted", "1"] in rows
    assert ["index_type", "exact"] in rows
    assert len({line.index(value, len(key)) for line, (key, value) in zip(lines, rows, strict=True)}) == 1  # aligned


def test_search_and_eval_modes_and_the_lexical_switch(
    tmp_path: Path, corpus: Path, checkpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    index = str(tmp_path / "idx")
    argv = ["index", "--model", str(checkpoints["stanford"]), "--input", str(corpus), "--index", index, "-q"]
    assert main([*argv, "--no-lexical"]) == 0
    capsys.readouterr()
    assert main(["search", "--index", index, "--mode", "hybrid", "-q", "mat"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no full-text index" in err
    assert len(err.splitlines()) == 1
    assert main(["search", "--index", index, "--json", "-q", "mat"]) == 0  # late, the default here
    assert {line["lexical_score"] for line in _json_lines(capsys.readouterr().out)} == {None}
    assert main(["compact", "--index", index, "--lexical", "-q"]) == 0
    assert main(["search", "--index", index, "--mode", "lexical", "--json", "-q", "mat"]) == 0
    assert [line["doc_id"] for line in _json_lines(capsys.readouterr().out)] == ["cat"]
    flags = ["--fusion", "rrf", "--json", "-q"]
    assert main(["search", "--index", index, "-k", "3", *flags, "the mat"]) == 0  # hybrid, the default now
    lines = _json_lines(capsys.readouterr().out)
    assert len(lines) == 3
    assert all(line["late_score"] is not None for line in lines)
    queries, qrels = tmp_path / "queries.jsonl", tmp_path / "qrels.tsv"
    queries.write_text(json.dumps({"_id": "q1", "text": "cat on a mat"}) + "\n")
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tcat\t1\n")
    assert main(["eval", "--index", index, "--queries", str(queries), "--qrels", str(qrels), "--mode", "lexical"]) == 0
    assert "ndcg@10     1.0000" in capsys.readouterr().out
    assert main(["search", "--index", index, "--late-weight", "2", "-q", "mat"]) == 1
    assert "late_weight" in capsys.readouterr().err


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


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err, err
    assert "Traceback" not in err, err
    return err


def _index_argv(checkpoints, source: Path, index: Path) -> list[str]:
    return ["index", "--model", str(checkpoints["stanford"]), "--input", str(source), "--index", str(index), "-q"]


@pytest.mark.parametrize("problem", ["missing", "malformed", "duplicate ids", "not utf-8", "interrupted"])
def test_a_failed_index_leaves_nothing_behind(
    tmp_path: Path,
    corpus: Path,
    checkpoints,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    problem: str,
) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = [json.dumps(d) for d in DOCS]
    if problem == "malformed":
        bad.write_text("\n".join([*lines, '{"_id": "x", "text": ']) + "\n")
    elif problem == "duplicate ids":
        bad.write_text("\n".join([*lines, lines[0]]) + "\n")
    elif problem == "not utf-8":
        bad.write_bytes(("\n".join(lines) + "\n").encode() + '{"_id": "x", "text": "caf\xe9"}\n'.encode("latin-1"))
    elif problem == "interrupted":
        from colbert_retriever.model.encoder import Encoder

        bad = corpus

        def interrupt(self: object, texts: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(Encoder, "encode_documents", interrupt)
    index = tmp_path / "idx"
    assert main(_index_argv(checkpoints, bad, index)) == (130 if problem == "interrupted" else 1)
    if problem != "interrupted":
        err = _one_error_line(capsys)
        assert str(bad) in err or "twice" in err
    assert not index.exists()  # was: an empty index that made the retry fail with "already exists"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_index_argv(checkpoints, bad, empty)) != 0
    assert empty.is_dir()
    assert not any(empty.iterdir())
    monkeypatch.undo()
    assert main(_index_argv(checkpoints, corpus, index)) == 0  # the retry works


def test_index_into_an_existing_index_says_add(
    built: Path, tmp_path: Path, corpus: Path, checkpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(_index_argv(checkpoints, corpus, built)) == 1
    assert "colbert-retriever add" in _one_error_line(capsys)
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"_id": "new", "text": "a new document"}) + "\n")
    assert main([*_index_argv(checkpoints, more, built), "--exist-ok"]) == 0
    assert main(["info", "--index", str(built), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 4
    argv = _index_argv(checkpoints, corpus, tmp_path / "e")
    assert main([*argv, "--index-type", "exact", "--nbits", "4"]) == 1
    assert "--nbits" in _one_error_line(capsys)


def test_folder_input_hidden_files_bom_and_other_encodings(
    tmp_path: Path, checkpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "notes"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD.txt").write_text("ref: refs/heads/main")
    (folder / ".draft.md").write_text("a hidden draft")
    (folder / "a.txt").write_bytes("\ufeffthe first note".encode())  # a byte-order mark
    (folder / "b.md").write_text("the second note")
    index = tmp_path / "idx"
    assert main(_index_argv(checkpoints, folder, index)) == 0
    assert main(["search", "--index", str(index), "-k", "5", "--json", "-q", "note"]) == 0
    hits = _json_lines(capsys.readouterr().out)
    assert sorted(h["doc_id"] for h in hits) == ["a.txt", "b.md"]
    assert Index.open(index).get(["a.txt"])[0].text == "the first note"
    (folder / "c.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (folder / "d.txt").write_bytes("th\xe9 fourth note".encode("utf-16"))  # decoded by its byte-order mark
    assert main(["add", "--index", str(index), "--input", str(folder), "--upsert", "--strict", "-q"]) == 1
    assert "c.txt is not UTF-8" in _one_error_line(capsys)
    assert main(["add", "--index", str(index), "--input", str(folder), "--upsert", "-q"]) == 0  # the rest goes in
    assert "skipped" in capsys.readouterr().err
    assert Index.open(index).get(["d.txt"])[0].text == "th\xe9 fourth note"
    assert "c.txt" not in Index.open(index).doc_ids()
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + json.dumps({"_id": "x", "text": "with a bom"}).encode() + b"\n")
    assert main(["add", "--index", str(index), "--input", str(jsonl), "-q"]) == 0


def test_blank_documents_are_skipped_with_a_warning(
    tmp_path: Path, checkpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "with-blanks.jsonl"
    rows = [*DOCS, {"_id": "e1", "title": "", "text": ""}, {"_id": "e2", "text": " \u200b "}]
    source.write_text("\n".join(json.dumps(d) for d in rows) + "\n")
    index = tmp_path / "idx"
    assert main(_index_argv(checkpoints, source, index)) == 0
    err = capsys.readouterr().err
    assert "skipped 2 blank document(s): 'e1', 'e2'" in err
    assert main(["info", "--index", str(index), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 3
    assert main([*_index_argv(checkpoints, source, tmp_path / "strict"), "--strict"]) == 1
    assert "'e1' is blank" in _one_error_line(capsys)
    assert not (tmp_path / "strict").exists()


def test_index_paths_the_system_refuses_are_one_line(
    built: Path, tmp_path: Path, corpus: Path, checkpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("not an index")
    cases = [
        ["search", "--index", str(a_file), "q"],
        ["info", "--index", str(a_file / "under")],
        ["add", "--index", str(a_file / "under"), "--input", str(corpus)],
        _index_argv(checkpoints, corpus, a_file),
        _index_argv(checkpoints, corpus, a_file / "under"),
        _index_argv(checkpoints, corpus, Path("/proc/colbert-index")),
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 1, argv
        _one_error_line(capsys)


def test_a_closed_pipe_ends_quietly(built: Path) -> None:
    command = [sys.executable, "-m", "colbert_retriever", "search", "--index", str(built), "-q", "paris"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # like `| head` exiting before the results come
    err = process.stderr.read().decode()
    assert process.wait() == 141
    assert "Traceback" not in err
    assert "BrokenPipe" not in err


def test_filter_values_are_strings_and_no_results_is_said_with_verbose(
    tmp_path: Path, checkpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "books.jsonl"
    books = [{"_id": "orwell", "text": "big brother is watching", "title": "1984"}, {"_id": "x", "text": "other"}]
    source.write_text("\n".join(json.dumps(b) for b in books) + "\n")
    index = str(tmp_path / "idx")
    assert main(_index_argv(checkpoints, source, Path(index))) == 0
    capsys.readouterr()
    assert main(["search", "--index", index, "--json", "-q", "--filter", "title=1984", "brother"]) == 0
    assert [h["doc_id"] for h in _json_lines(capsys.readouterr().out)] == ["orwell"]  # was: compared as 1984 (int)
    assert main(["search", "--index", index, "-q", "--filter", "title==1984", "brother"]) == 1
    assert "FIELD=VALUE" in _one_error_line(capsys)
    assert main(["search", "--index", index, "--filter", "title=1985", "brother"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, "no results" in captured.err) == ("", False)
    assert main(["search", "--index", index, "-v", "--filter", "title=1985", "brother"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, "no results for 'brother'" in captured.err) == ("", True)


def test_delete_ignore_missing_eval_without_matches_and_an_all_deleted_index(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["delete", "--index", str(built), "cat", "nope", "-q"]) == 1  # atomic: nothing deleted
    assert "nope" in _one_error_line(capsys)
    assert main(["delete", "--index", str(built), "cat", "nope", "--ignore-missing"]) == 0
    assert "deleted 1 documents; the index now holds 2" in capsys.readouterr().err
    queries, qrels = tmp_path / "q.jsonl", tmp_path / "qrels.tsv"
    queries.write_text(json.dumps({"_id": "1", "text": "paris"}) + "\n")
    qrels.write_text("query-id\tcorpus-id\tscore\n7\teiffel\t1\n")
    assert main(["eval", "--index", str(built), "--queries", str(queries), "--qrels", str(qrels), "-q"]) == 1
    assert "no query id" in _one_error_line(capsys)
    assert main(["delete", "--index", str(built), "eiffel", "plant", "-q"]) == 0
    assert main(["search", "--index", str(built), "--json", "-q", "paris"]) == 0  # was: EmptyIndexError
    assert capsys.readouterr().out == ""


def test_queries_file_errors_name_the_query_and_line(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"_id": "q1", "text": "paris"}) + "\n\n" + json.dumps({"_id": "q2", "text": "\u200b"}) + "\n"
    )
    assert main(["search", "--index", str(built), "--queries", str(queries), "-q"]) == 1
    assert f"{queries}:3: query 'q2' has a blank text" in _one_error_line(capsys)


def test_a_waiting_writer_says_who_holds_the_lock(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import threading

    from colbert_retriever.atomic import writer_lock

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_lock(built, timeout=5):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    threading.Timer(0.5, release.set).start()
    assert main(["delete", "--index", str(built), "cat"]) == 0
    holder.join()
    err = capsys.readouterr().err
    assert err.count("waiting for the writer lock") == 1
    assert f"(held by pid {os.getpid()})" in err


def test_version_and_index_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    from colbert_retriever import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"colbert-retriever {__version__}"
    for command in ("index", "add", "delete", "search", "info", "eval", "compact", "retrain"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        usage = capsys.readouterr().out
        assert "--index FOLDER" in usage.split("options:")[1], command  # with a help text of its own


def test_progress_has_a_total_and_library_notices_wait_for_verbose(
    tmp_path: Path, corpus: Path, checkpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    index = str(tmp_path / "idx")
    argv = ["index", "--model", str(checkpoints["plain"]), "--input", str(corpus), "--index", index]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "3/3" in err  # a bar with a total (and so an ETA)
    assert "zero-shot" not in err
    assert main(["search", "--index", index, "-v", "paris"]) == 0
    assert capsys.readouterr().err.count("zero-shot") == 1


def test_retrain_keeps_a_small_auto_index_exact_unless_forced(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = (built / "manifest.json").read_bytes()
    capsys.readouterr()
    assert main(["retrain", "--index", str(built), "-q"]) == 1  # was: silently converted to plaid
    assert "--force" in _one_error_line(capsys)
    assert (built / "manifest.json").read_bytes() == manifest
    assert main(["retrain", "--index", str(built), "--force", "-q"]) == 0
    assert main(["info", "--index", str(built), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["index_type"], info["auto"], info["documents"]) == ("plaid", True, 3)


def test_upsert_reports_updated_and_added(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "changes.jsonl"
    source.write_text(
        json.dumps({"_id": "cat", "text": "a cat again"}) + "\n" + json.dumps({"_id": "dog", "text": "a dog"}) + "\n"
    )
    capsys.readouterr()
    assert main(["add", "--index", str(built), "--input", str(source), "--upsert"]) == 0
    assert "updated 1, added 1; the index now holds 4" in capsys.readouterr().err


def test_a_query_cut_at_query_maxlen_is_reported_once_with_verbose(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = "the eiffel tower is a tall iron tower in paris, the capital of france"  # > query_maxlen 8
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join(json.dumps({"_id": str(i), "text": long}) for i in range(3)) + "\n")
    capsys.readouterr()
    assert main(["search", "--index", str(built), "--queries", str(queries), "-v"]) == 0
    assert capsys.readouterr().err.count("was cut at query_maxlen=8") == 1
    assert main(["search", "--index", str(built), long]) == 0
    assert "query_maxlen" not in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["--qdrant-path", "--qdrant-edge"])
def test_qdrant_in_place_of_a_folder(
    tmp_path: Path, corpus: Path, checkpoints, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    pytest.importorskip("qdrant_client" if engine == "--qdrant-path" else "qdrant_edge")
    where = [engine, str(tmp_path / "qdrant"), "--collection", "docs"]
    model = ["--model", str(checkpoints["stanford"])]
    assert main(["index", *model, "--input", str(corpus), *where, "-q"]) == 0
    capsys.readouterr()
    assert main(["search", *where, "--json", "-k", "2", "-q", "--mode", "late", "the eiffel tower"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert len(lines) == 2
    assert {"doc_id", "score", "late_score", "metadata"} <= set(lines[0])
    assert main(["search", *where, "--json", "-q", "--filter", "lang=fr", "sat"]) == 0
    assert [line["doc_id"] for line in _json_lines(capsys.readouterr().out)] == ["cat"]
    assert main(["delete", *where, "cat", "-q"]) == 0
    assert main(["info", *where, "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert (described["documents"], described["collection"], described["index_type"]) == (2, "docs", "qdrant")
    assert main(["index", *model, "--input", str(corpus), *where, "-q"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["info", engine, str(tmp_path / "qdrant"), "--collection", "nope"]) == 1
    assert capsys.readouterr().err.startswith("error: no Qdrant")
    with pytest.raises(SystemExit) as exited:  # one place only
        main(["search", *where, "--index", str(tmp_path / "idx"), "q"])
    assert exited.value.code == 2
