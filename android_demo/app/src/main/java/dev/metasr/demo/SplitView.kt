package dev.metasr.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.RectF
import android.util.AttributeSet
import android.view.MotionEvent
import android.view.View

/**
 * Original vs upscaled, split at a draggable vertical line. Both are drawn into the same rectangle, so the
 * original is shown bilinearly resized: the comparison is MetaSR against plain interpolation.
 */
class SplitView(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private var original: Bitmap? = null
    private var upscaled: Bitmap? = null
    private val bilinear = Paint(Paint.FILTER_BITMAP_FLAG)
    private val divider = Paint().apply {
        color = Color.WHITE
        strokeWidth = 4f
    }
    private val frame = RectF()

    /** Where the split sits, 0 (all upscaled) .. 1 (all original). */
    var split: Float = 0.5f
        set(value) {
            field = value.coerceIn(0f, 1f)
            invalidate()
        }

    fun show(original: Bitmap, upscaled: Bitmap) {
        this.original = original
        this.upscaled = upscaled
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        val left = original ?: return
        val right = upscaled ?: return
        val fit = minOf(width.toFloat() / left.width, height.toFloat() / left.height)
        val w = left.width * fit
        val h = left.height * fit
        frame.set((width - w) / 2, (height - h) / 2, (width + w) / 2, (height + h) / 2)
        val x = frame.left + split * frame.width()
        canvas.save()
        canvas.clipRect(frame.left, frame.top, x, frame.bottom)
        canvas.drawBitmap(left, null, frame, bilinear)
        canvas.restore()
        canvas.save()
        canvas.clipRect(x, frame.top, frame.right, frame.bottom)
        canvas.drawBitmap(right, null, frame, bilinear)
        canvas.restore()
        canvas.drawLine(x, frame.top, x, frame.bottom, divider)
    }

    override fun onTouchEvent(event: MotionEvent): Boolean {
        if (frame.isEmpty) return super.onTouchEvent(event)
        when (event.actionMasked) {
            MotionEvent.ACTION_DOWN, MotionEvent.ACTION_MOVE -> split = (event.x - frame.left) / frame.width()
            MotionEvent.ACTION_UP -> performClick()
            else -> return super.onTouchEvent(event)
        }
        return true
    }

    override fun performClick(): Boolean = super.performClick()
}
