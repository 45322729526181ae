"""Training: the Tail-Aware Loss (``loss``), the training settings (``config``), the training
loop on cached backbone features (``fit``) and the one-file checkpoint of plain data
(``checkpoint``)."""
