"""Markdown tables and p-value formatting."""
import pytest

from mechanism.io.text import format_p, markdown_table


@pytest.mark.parametrize("p, text", [(0.5, "0.5"), (0.0123, "0.0123"), (5.43e-93, "5.43e-93"),
                                     (0.0, "< 2.2e-308")])
def test_p_values_keep_three_digits_and_underflow_is_a_bound(p, text):
    assert format_p(p) == text


def test_table_rows_must_match_the_header_and_pipes_are_escaped():
    assert markdown_table(["a", "b"], [["x|y", 1]]).splitlines()[2] == "| x\\|y | 1 |"
    with pytest.raises(ValueError, match="2 cells"):
        markdown_table(["a"], [["x", "y"]])
