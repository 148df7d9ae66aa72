"""The artifact contracts every stage shares: how to read what another stage wrote (the manifest and its packed
image array, the conditioning vectors, the synthesis shards) and how those files prove they are current. Readers
only; each artifact's writer stays with the stage that makes it. Light imports: the workflow imports `integrity` and
`shards` while it builds the DAG."""
