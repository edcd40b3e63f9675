"""metasr-upscale: run the student (or an exported artifact) on images and videos, tiled in bounded memory."""
