from tfserve_nb.core.version_policy import All, Latest, Specific


def test_latest_defaults_to_one_and_zero_counts_as_one():
    assert Latest().select([1, 3, 2]) == {3}
    assert Latest(0).select([1, 3, 2]) == {3}
    assert Latest(2).select([1, 3, 2]) == {2, 3}
    assert Latest(5).select([4]) == {4}
    assert Latest().select([]) == set()


def test_all_and_specific():
    assert All().select([1, 2, 7]) == {1, 2, 7}
    assert Specific((1, 9)).select([1, 2, 7]) == {1}


def test_text_form_is_the_config_file_syntax():
    assert str(Latest(2)) == "latest { num_versions: 2 }"
    assert str(All()) == "all {}"
    assert str(Specific((1, 2))) == "specific { versions: 1 versions: 2 }"
