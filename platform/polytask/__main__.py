from polytask.cli import app

app()
