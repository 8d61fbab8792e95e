"""Token attribution methods: how much each input token contributes to a target score."""
