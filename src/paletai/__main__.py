from paletai.cli import app

app(prog_name="paletai")
