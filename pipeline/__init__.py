"""The lecture workflow around the scenes: captions, chapters, lecture files, the HTML page,
and running scene renders in worker processes. Holds no drawing and no model maths."""
