"""AKS Egress Remediator: keeps the AKS egress baseline on Azure Firewall and route tables intact."""
