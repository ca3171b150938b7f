"""Training the orchestral-family separator and synthesising its data (``pip install upmix[train]``).

Not part of the runtime: `upmix` never imports this package. The model itself
(`upmix.separation.model`) and the shipped weights stay in `upmix.separation`; this package renders
training excerpts (`data`, played by the banks of `samples`, `synthetic`, `sonivox`, `freepats` and
`generaluser`), checks banks for waves shared with the test SoundFonts (`sharing`) and trains,
scores and exports the model (`train`, ``python -m training.train --config orchestra``)."""
