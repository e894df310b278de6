"""The Textual app of nntui (setup screen and monitor). Never imports torch: training runs in a
child process (`python -m nntui run ... --headless`) that the monitor follows and steers."""
