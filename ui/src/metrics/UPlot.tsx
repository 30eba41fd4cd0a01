// A thin React wrapper around uPlot: one chart per options object, sized to its container
// (ResizeObserver), fed new data without being rebuilt, destroyed on unmount.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export type UPlotOptions = Omit<uPlot.Options, "width" | "height">;

export function UPlot({
  options,
  data,
  height,
  className,
}: {
  /** A new object rebuilds the chart (for a theme change); keep it memoized otherwise. */
  options: UPlotOptions;
  data: uPlot.AlignedData;
  height: number;
  className?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const latest = useRef(data);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const width = () => Math.max(200, Math.floor(el.clientWidth));
    const u = new uPlot({ ...options, width: width(), height }, latest.current, el);
    chart.current = u;
    const observer = new ResizeObserver(() => {
      if (u.width !== width()) u.setSize({ width: width(), height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      u.destroy();
      chart.current = null;
    };
  }, [options, height]);

  useEffect(() => {
    latest.current = data;
    chart.current?.setData(data);
  }, [data]);

  return <div ref={host} className={className} style={{ minHeight: height }} />;
}
