"""Traffic sent by the caller: a weighted split over versions and labels (:mod:`.split`), what a
stream of requests got back (:mod:`.statistics`), and a steady stream sent in a background
thread (:mod:`.sender`)."""
