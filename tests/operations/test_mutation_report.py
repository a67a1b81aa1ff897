"""`make mutate`'s report: the score per module, timeouts counted as caught, survivors explained or named."""

from __future__ import annotations

from scripts.mutation_report import by_rule, report, verdicts

RESULTS = """
    chalicelib.api.cursor.x_decode__mutmut_1: killed
    chalicelib.api.cursor.x_decode__mutmut_2: survived
    chalicelib.api.cursor.x_decode__mutmut_3: timeout
    chalicelib.storage.store.xǁMailStoreǁsave__mutmut_1: survived
    chalicelib.storage.store.xǁMailStoreǁsave__mutmut_2: no tests
    chalicelib.storage.store.xǁMailStoreǁsave__mutmut_3: not checked
"""


def test_each_mutant_is_read_with_its_module_and_verdict() -> None:
    assert verdicts(RESULTS) == {
        "chalicelib.api.cursor.x_decode__mutmut_1": ("chalicelib.api.cursor", "killed"),
        "chalicelib.api.cursor.x_decode__mutmut_2": ("chalicelib.api.cursor", "survived"),
        "chalicelib.api.cursor.x_decode__mutmut_3": ("chalicelib.api.cursor", "timeout"),
        "chalicelib.storage.store.xǁMailStoreǁsave__mutmut_1": ("chalicelib.storage.store", "survived"),
        "chalicelib.storage.store.xǁMailStoreǁsave__mutmut_2": ("chalicelib.storage.store", "no tests"),
        "chalicelib.storage.store.xǁMailStoreǁsave__mutmut_3": ("chalicelib.storage.store", "not checked"),
    }


def test_the_score_counts_timeouts_as_caught_leaves_equivalents_and_unrun_mutants_out() -> None:
    found = verdicts(RESULTS)
    lines, unexplained = report(found, {"chalicelib.api.cursor.x_decode__mutmut_2": "equivalent: why"})
    # module, mutants, not run, caught, survived (explained), killed, score
    assert lines[1].split() == ["chalicelib.api.cursor", "3", "0", "2", "1", "(", "1)", "67%", "100%"]
    assert lines[2].split() == ["chalicelib.storage.store", "3", "1", "0", "2", "(", "0)", "0%", "0%"]
    assert lines[3].split() == ["all", "6", "1", "2", "3", "(", "1)", "40%", "50%"]
    assert unexplained == 2
    assert "  chalicelib.api.cursor.x_decode__mutmut_2: equivalent: why" in lines
    assert lines[-2:] == [
        "  chalicelib.storage.store.xǁMailStoreǁsave__mutmut_1 (survived): mutmut show "
        "chalicelib.storage.store.xǁMailStoreǁsave__mutmut_1",
        "  chalicelib.storage.store.xǁMailStoreǁsave__mutmut_2 (no tests): mutmut show "
        "chalicelib.storage.store.xǁMailStoreǁsave__mutmut_2",
    ]


def diff(before: str, after: str) -> str:
    return f"--- a\n+++ b\n@@ -1 +1 @@\n-{before}\n+{after}\n"


def test_two_rules_explain_a_survivor_by_its_own_change_and_nothing_else() -> None:
    assert by_rule(diff('    return data.decode("ascii")', '    return data.decode("ASCII")')) == (
        "rule: a codec's name in another case, which Python's codec lookup ignores"
    )
    assert by_rule(diff('    raise NotFoundError("no mail")', '    raise NotFoundError("XXno mailXX")')) == (
        "rule: only the text of a message changed, not the error's class or status, which callers act on"
    )
    assert by_rule(diff('    raise NotFoundError("no mail")', '    raise ConflictError("no mail")')) is None
    assert by_rule(diff('    key = "mail#" + id_', '    key = "XXmail#XX" + id_')) is None
    assert by_rule(diff('    return data.decode("ascii")', '    return data.decode("latin-1")')) is None
