"""Traffic sent by the caller: a weighted split over versions and labels (:mod:`.split`)."""
