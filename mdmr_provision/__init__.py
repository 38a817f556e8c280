"""mdmr-provision: declarative provisioning and AS2 connectivity proofs for the MDM/R."""

__version__ = "0.1.0"
