"""One module per provider (``sendzen``, ``infobip``), each a class behind ``base.Source``;
``registry`` builds them from the config."""
