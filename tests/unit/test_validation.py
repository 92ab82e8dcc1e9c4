"""Command-line values are refused before any work, with one line saying what is allowed."""
import pytest

from visualizer.cli import EXIT_BAD_INPUT, main


@pytest.mark.parametrize("args, message", [
    (["train", "--steps", "-1"], "must be 0 or more"),
    (["train", "--batch-size", "0"], "must be at least 1"),
    (["train", "--model", "transformer-xl"], "invalid choice"),
    (["train", "--save", "{tmp}/no/such/folder/run.safetensors"], "does not exist"),
    (["train", "--save", "{tmp}"], "is a folder"),
    (["--run-steps", "5", "--screenshot", "{tmp}/missing/app.png"], "does not exist"),
    (["--run-steps", "-5"], "must be 0 or more"),
    (["--demo", "no-such-demo"], "choose one of cnn-shapes"),
    (["--screenshot", "x.png"], "needs --run-steps"),
])
def test_bad_values_exit_2_with_one_line_before_any_work(args, message, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == EXIT_BAD_INPUT and len(err.splitlines()) == 1 and message in err


def test_a_read_only_output_folder_is_refused(tmp_path, capsys):
    import os

    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(SystemExit):
            main(["train", "--save", str(folder / "run.safetensors")])
        assert "not writable" in capsys.readouterr().err
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "50", "learning rate must be a number in (0, 10]"),
    ("--weight-decay", "-0.5", "weight decay must be in [0, 1]"),
])
def test_out_of_range_hyperparameters_say_what_is_allowed(option, value, message, capsys):
    code = main(["train", "--model", "mlp", "--data", "xor", "--steps", "1", option, value])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and message in err and len(err.splitlines()) == 1
