"""voicepi: a voice appliance daemon for the Raspberry Pi.

The ``daemon`` package is hardware-free (it never imports ``hw`` at module
level); ``daemon.realtime`` is the embeddable realtime session engine.
"""

__version__ = "0.1.0"
