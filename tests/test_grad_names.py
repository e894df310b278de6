"""Layer names shortened for the gradient pane stay distinct and fit their column."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from nntui.tui.gradbars import MIN_NAME_WIDTH, short_names

components = st.text(alphabet="abcfxyz012_", min_size=1, max_size=9)  # as in torch names
dotted = st.lists(components, min_size=1, max_size=6).map(".".join)


@settings(max_examples=300, deadline=None)
@given(names=st.lists(dotted, min_size=1, max_size=40, unique=True), width=st.integers(MIN_NAME_WIDTH, 40))
@example(names=["fc1.weight", "fc2.weight"], width=MIN_NAME_WIDTH)
@example(names=["aaaaaaaaaax.w", "aaaaaaaaaay.w"], width=MIN_NAME_WIDTH)
@example(names=["l1.w", "layer1.w", "lx1.w"], width=8)
def test_short_names_of_any_dotted_names_are_distinct_and_fit(names, width):
    short = short_names(names, width)
    assert set(short) == set(names)
    assert len(set(short.values())) == len(names), short
    assert all(0 < len(text) <= width for text in short.values()), short


def test_short_names_keep_the_part_that_tells_layers_apart():
    short = short_names(["fc1.weight", "fc1.bias", "fc2.weight", "out.weight"], 8)
    assert short == {"fc1.weight": "fc1.w", "fc1.bias": "fc1.b", "fc2.weight": "fc2.w", "out.weight": "out.w"}
    deep = short_names(["model.encoder.layer.10.attention.dense.weight",
                        "model.encoder.layer.11.attention.dense.weight"], 14)
    assert deep == {"model.encoder.layer.10.attention.dense.weight": "10.a.dense.w",
                    "model.encoder.layer.11.attention.dense.weight": "11.a.dense.w"}  # the shared start dropped


def test_names_that_fit_are_left_alone():
    names = ["fc1.weight", "fc1.bias", "out.weight"]
    assert short_names(names, 20) == {name: name for name in names}
    assert short_names(["model.fc.weight"], 20) == {"model.fc.weight": "model.fc.weight"}  # one name: nothing shared
