"""ncp-control: Neural Circuit Policies (LTC / CfC on NCP wirings) as recurrent actors."""

__version__ = "0.1.0"
