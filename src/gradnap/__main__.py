from gradnap.cli.main import app

app(prog_name="gradnap")
