from archiver.errors import one_line


def test_one_line_bounds_driver_noise() -> None:
    assert one_line("(sqlite3.IntegrityError) boom\n[SQL: INSERT ...]\n[parameters: (...)]") == \
        "(sqlite3.IntegrityError) boom"
    assert len(one_line("x" * 2000)) == 500 and one_line("x" * 2000).endswith("...")
    assert one_line("  \n") == ""
