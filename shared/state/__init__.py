"""State in Azure Table Storage: the table helper and one repository per table."""
